"""The partition plan on its own: which split is chosen, and how split coverage is counted.

The walk against the provider emulators is in `test_partition_coverage.py`.
"""

from __future__ import annotations

import json

from connectors.kit.partition import (
    Filters,
    Plan,
    Range,
    RangeDimension,
    SearchResult,
    ValuesDimension,
    split_partition,
    walk,
)
from connectors.kit.partition_walk import SplitGroup, choose_split, covers_all
from connectors.kit.testing import LocalRunContext

BUCKETS: tuple[Range, ...] = ((1, 10), (11, 100), (101, None))


def _ranges(filters: Filters) -> list[Range]:
    return [(int(lo), None if hi is None else int(hi)) for lo, hi in filters.get("size") or []]


def _write(rng: Range) -> Filters:
    return {"size": [list(rng)]}


SIZE = RangeDimension("size", BUCKETS, _ranges, _write)
PLACES = ValuesDimension("place", "place", ("US", "DE"))
LEVELS = ValuesDimension("level", "level")


def test_exhaustive_split_comes_before_a_default_value_list_configured_first() -> None:
    # Given places configured before sizes, and no place in the user's filters
    children = split_partition({}, [PLACES, SIZE])
    # Then the sizes split: a default list would lose everyone outside it
    assert children == [{"size": [[1, 10]]}, {"size": [[11, 100]]}, {"size": [[101, None]]}]


def test_user_values_are_exhaustive_and_keep_the_configured_order() -> None:
    filters = {"place": ["US", "FR", "JP"], "level": ["vp", "cxo"]}
    assert split_partition(filters, [PLACES, SIZE]) == [
        {"place": ["US"]},
        {"place": ["FR"]},
        {"place": ["JP"]},
    ]
    assert split_partition(filters, [LEVELS, PLACES, SIZE]) == [
        {"level": ["vp"]},
        {"level": ["cxo"]},
    ]


def test_a_default_list_is_the_last_resort() -> None:
    # Given a single size the range cannot halve, and no place filter
    filters = {"size": [[57, 57]]}
    assert not PLACES.exhaustive(filters) and SIZE.exhaustive(filters)
    # Then the default places split it after all
    assert split_partition(filters, [SIZE, PLACES]) == [{"place": ["US"]}, {"place": ["DE"]}]


def test_range_defaults_with_a_gap_are_not_exhaustive() -> None:
    assert covers_all(BUCKETS) and covers_all(((11, None), (1, 10)))
    assert not covers_all(((1, 10), (12, None)))  # 11 falls in no bucket
    assert not covers_all(((1, 10), (11, 20)))  # nothing above 20
    gappy = RangeDimension("size", ((1, 10), (20, None)), _ranges, _write)
    assert not gappy.exhaustive({}) and gappy.exhaustive({"size": [[1, 5]]})


def test_split_coverage_is_counted_as_each_child_is_sized() -> None:
    # Given a partition of 100 split into three children
    plan = Plan().split({}, 100, [{"p": ["a"]}, {"p": ["b"]}, {"p": ["c"]}])
    plan, done = plan.sized(60)
    assert done is None and plan.splits == (SplitGroup({}, 100, left=2, covered=60, children=3),)
    # When the next child is sized and then split in turn, its own group nests inside
    plan, done = plan.sized(30)
    plan = plan.split({"p": ["b"]}, 30, [{"q": [1]}, {"q": [2]}])
    plan, inner = plan.sized(10)
    plan, inner = plan.sized(20)
    assert inner == SplitGroup({"p": ["b"]}, 30, left=0, covered=30, children=2)
    assert len(plan.splits) == 1 and plan.missed == 0
    # Then the last child completes the outer group: 100 - (60 + 30 + 4) are out of reach
    plan, outer = plan.sized(4)
    assert outer == SplitGroup({}, 100, left=0, covered=94, children=3)
    assert plan.splits == () and plan.missed == 6


def test_overlapping_children_do_not_count_as_missed() -> None:
    plan = Plan().split({}, 10, [{"p": ["US"]}, {"p": ["Texas"]}])
    plan, _ = plan.sized(10)
    plan, group = plan.sized(4)
    assert group is not None and group.covered == 14 and plan.missed == 0


def test_the_plan_round_trips_through_checkpoint_json_and_reads_old_checkpoints() -> None:
    plan = Plan().split({}, 100, [{"p": ["a"]}, {"p": ["b"]}])
    plan, _ = plan.sized(70)
    plan = plan.advance(20, partition_done=False)
    text = json.dumps(plan.to_checkpoint())
    assert Plan.from_checkpoint(json.loads(text)) == plan
    old = {"current": {"p": ["b"]}, "page": 1, "pending": [], "done": 70, "total": 100}
    legacy = Plan.from_checkpoint(old)
    assert legacy.splits == () and legacy.missed == 0
    assert legacy.sized(25) == (legacy, None)  # its split's parent total is unknown: not guessed


def test_a_split_that_did_not_narrow_is_undone_and_its_dimension_skipped() -> None:
    # Given a search of 50 split by size into three children, inside an outer split by place
    plan = Plan().split({}, 100, [{"place": ["US"]}, {"place": ["DE"]}], "place")
    plan, _ = plan.sized(50)
    plan = plan.split({"place": ["US"]}, 50, [{"size": [[1, 10]]}, {"size": [[11, 100]]}], "size")
    assert plan.splits[-1].first_child_like_parent(50)  # the first child holds all 50
    assert not plan.splits[-1].first_child_like_parent(49)
    # When the split is undone
    undone = plan.unsplit()
    # Then the parent is read again, its other children are gone, the outer split is intact
    assert undone.current == {"place": ["US"]} and undone.page == 1
    assert undone.pending == ({"place": ["DE"]},)
    assert [g.dimension for g in undone.splits] == ["place"] and undone.skip == ("size",)
    # and the skipped dimension survives a checkpoint and is never chosen again
    restored = Plan.from_checkpoint(json.loads(json.dumps(undone.to_checkpoint())))
    assert restored == undone
    filters = {"size": [[1, 100]]}
    assert choose_split(filters, [SIZE, PLACES]) == (
        "size",
        [{"size": [[1, 50]]}, {"size": [[51, 100]]}],
    )
    assert choose_split(filters, [SIZE, PLACES], restored.skip) == (
        "place",
        [{"place": ["US"]}, {"place": ["DE"]}],
    )


def test_a_gap_found_after_the_last_non_empty_page_reaches_the_job() -> None:
    # Given a search of 30 over a cap of 20, split by a default place list: the US holds 15
    # people, Germany none, and 15 live elsewhere (out of reach)
    people = {"US": 15, "DE": 0}

    def fetch(filters: Filters, page: int) -> SearchResult[int]:
        place = (filters.get("place") or [None])[0]
        total = people[place] if place else 30
        start = (page - 1) * 10
        return SearchResult(total, list(range(start, min(total, start + 10))))

    # When the walk runs to its end
    pages = list(
        walk(
            Plan(),
            base={},
            fetch=fetch,
            dimensions=[PLACES],
            cap=20,
            per_page=10,
            ctx=LocalRunContext(),
            event_prefix="test",
        )
    )
    # Then the US pages come, then one empty page whose plan carries the 15 missed (the last
    # child, Germany, was empty, so no page of people could carry the figure)
    assert [len(items) for items, _ in pages] == [10, 5, 0]
    assert [plan.missed for _, plan in pages] == [0, 0, 15]
    assert pages[-1][1].current is None
