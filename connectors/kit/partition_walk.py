"""Splitting a provider search into partitions that each fit under the provider's paging cap.

Why: Apollo stops paging at 50,000 records per search and ZoomInfo at 1,000. A job that needs
more runs several narrower searches whose union is the original one. A *partition* is a small
dict of filters laid over the job's own filters; one whose total exceeds the cap is split along the
first `Dimension` that can still split it (e.g. headcount ranges, then locations), depth first.
Exhaustive splits (ranges whose defaults cover every value, values the user's own filter lists)
are tried before non-exhaustive ones (a default list such as `COUNTRIES`): a person outside such
a list matches no child and cannot be fetched.

Nothing is lost silently: every split's parent total is kept until its last child has been
sized (page 1 gives each child's total); children covering less than the parent are logged as
`<prefix>.partition_incomplete` with the missing count, and the walk's end logs
`<prefix>.search_finished` with the whole search's `missed` figure (incomplete splits plus
partitions beyond the cap that could not be split). Overlapping values (e.g. a city and its
country) make children cover more than the parent; then the missing count is a lower bound.

The walk state (`Plan`: current partition, next page, pending partitions, progress) is small JSON
and is the job checkpoint, so a resumed job continues with exactly the records after the last
committed page. Partitions must be disjoint (one value per child, non-overlapping ranges) or a
person would come back once per partition that matches them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from connectors.base import RunContext

Filters = dict[str, Any]
T = TypeVar("T")

#: a numeric range; `None` as the upper bound means open-ended
Range = tuple[int, int | None]
#: countries a location dimension splits an unfiltered search into (disjoint; NOT exhaustive:
#: people elsewhere are missed, and counted as missed, when a search is split by them)
COUNTRIES = (
    "United States", "Canada", "United Kingdom", "Ireland", "Germany", "France", "Netherlands",
    "Spain", "Italy", "Sweden", "Denmark", "Switzerland", "Poland", "Australia", "Singapore",
    "India", "Brazil", "Mexico", "Israel", "Japan",
)  # fmt: skip


class Dimension(Protocol):
    """One way of cutting a search into disjoint parts."""

    @property
    def name(self) -> str: ...

    def split(self, filters: Filters) -> list[Filters] | None:
        """Filter overrides, one per child, within `filters`; None if it cannot split."""
        ...

    def exhaustive(self, filters: Filters) -> bool:
        """Whether the children of `split(filters)` together match everything `filters` does."""
        ...


@dataclass(frozen=True, slots=True)
class ValuesDimension:
    """Split a multi-valued filter into one child per value (defaults when the filter is unset).

    `as_csv` reads and writes the value as a comma-separated string (ZoomInfo) instead of a list.
    """

    name: str
    key: str
    defaults: tuple[str, ...] = ()
    as_csv: bool = False

    def _values(self, filters: Filters) -> list[str]:
        value = filters.get(self.key)
        if value is None or value == "" or value == []:
            return []
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()] if self.as_csv else [value]
        return [str(v) for v in value]

    def split(self, filters: Filters) -> list[Filters] | None:
        values = self._values(filters) or list(self.defaults)
        if len(values) < 2:
            return None
        return [{self.key: v if self.as_csv else [v]} for v in values]

    def exhaustive(self, filters: Filters) -> bool:
        # the user's own values are alternatives: one child each is their union; defaults are not
        return bool(self._values(filters))


def bisect_range(rng: Range) -> list[Range] | None:
    """Two disjoint halves of an integer range, or None for a single value."""
    lo, hi = rng
    if hi is None:
        mid = max(2 * lo, lo + 1)
        return [(lo, mid), (mid + 1, None)]
    if hi <= lo:
        return None
    mid = (lo + hi) // 2
    return [(lo, mid), (mid + 1, hi)]


@dataclass(frozen=True, slots=True)
class RangeDimension:
    """Split numeric ranges: several ranges into one child each, one range into halves.

    `read` returns the ranges set in the filters (empty when unset: then `defaults`, which must
    cover everything), `write` the overrides selecting exactly one range.
    """

    name: str
    defaults: tuple[Range, ...]
    read: Callable[[Filters], list[Range]]
    write: Callable[[Range], Filters]

    def split(self, filters: Filters) -> list[Filters] | None:
        ranges = self.read(filters) or list(self.defaults)
        if len(ranges) == 1:
            halves = bisect_range(ranges[0])
            if halves is None:
                return None
            ranges = halves
        return [self.write(r) for r in ranges]

    def exhaustive(self, filters: Filters) -> bool:
        return bool(self.read(filters)) or covers_all(self.defaults)


def covers_all(ranges: Sequence[Range]) -> bool:
    """Whether `ranges` leave no gap from 1 upwards (so every positive count falls in one)."""
    end = 0
    for lo, hi in sorted(ranges, key=lambda r: r[0]):
        if lo > end + 1:
            return False
        if hi is None:
            return True
        end = max(end, hi)
    return False


def split_partition(filters: Filters, dimensions: Sequence[Dimension]) -> list[Filters] | None:
    """The children of the first dimension that can split `filters`, exhaustive ones first.

    The configured order holds within each kind; a non-exhaustive split (a default value list)
    is the last resort, since whoever matches none of its values is out of reach.
    """
    choice = choose_split(filters, dimensions)
    return None if choice is None else choice[1]


def choose_split(
    filters: Filters, dimensions: Sequence[Dimension], skip: Sequence[str] = ()
) -> tuple[str, list[Filters]] | None:
    """`split_partition` with the chosen dimension's name, never one of `skip` (dimensions the
    provider was found to ignore: splitting on them does not narrow the search)."""
    usable = [d for d in dimensions if d.name not in skip]
    ordered = [d for d in usable if d.exhaustive(filters)]
    ordered += [d for d in usable if d not in ordered]
    for dim in ordered:
        children = dim.split(filters)
        if children:
            return dim.name, children
    return None


@dataclass(frozen=True, slots=True)
class SplitGroup:
    """A split whose children are not all sized yet: what they must add up to.

    Groups nest like the depth-first walk (the innermost is last), so the partition being sized
    always belongs to the innermost group; a group leaves the plan when its last child is sized.
    """

    partition: Filters
    total: int
    left: int
    covered: int = 0
    dimension: str = ""  # the dimension split on ("" in older checkpoints)
    children: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SplitGroup:
        return cls(
            partition=dict(data.get("partition") or {}),
            total=int(data["total"]),
            left=int(data["left"]),
            covered=int(data.get("covered", 0)),
            dimension=str(data.get("dimension", "")),
            children=int(data.get("children", 0)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "total": self.total,
            "left": self.left,
            "covered": self.covered,
            "dimension": self.dimension,
            "children": self.children,
        }

    def first_child_like_parent(self, total: int) -> bool:
        """Whether the child being sized is the first of several and matches all its parent does
        (all matches in one child, or a provider ignoring the filter split on)."""
        first = self.covered == 0 and self.left == self.children
        return bool(self.dimension) and self.children > 1 and first and total == self.total > 0


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a partitioned search stands; round-trips through the checkpoint.

    `current` is the override set of the partition being read (None: finished), `page` the next
    1-based page of it (page 1 also means "not yet sized": it may still be split), `pending` the
    partitions still to read, `done`/`total` the progress of the whole search, `splits` the
    splits still being sized (bounded by the split depth) and `missed` the people found out of
    reach so far.
    """

    current: Filters | None = field(default_factory=dict)
    page: int = 1
    pending: tuple[Filters, ...] = ()
    done: int = 0
    total: int | None = None
    splits: tuple[SplitGroup, ...] = ()
    missed: int = 0
    skip: tuple[str, ...] = ()  # dimensions found not to narrow a search: never split on again

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any] | None) -> Plan:
        if not checkpoint:
            return cls()
        return cls(
            current=checkpoint.get("current"),
            page=int(checkpoint.get("page", 1)),
            pending=tuple(checkpoint.get("pending", ())),
            done=int(checkpoint.get("done", 0)),
            total=checkpoint.get("total"),
            splits=tuple(SplitGroup.from_json(g) for g in checkpoint.get("splits", ())),
            missed=int(checkpoint.get("missed", 0)),
            skip=tuple(checkpoint.get("skip", ())),
        )

    def to_checkpoint(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "page": self.page,
            "pending": list(self.pending),
            "done": self.done,
            "total": self.total,
            "splits": [g.to_json() for g in self.splits],
            "missed": self.missed,
            "skip": list(self.skip),
        }

    def advance(self, fetched: int, partition_done: bool) -> Plan:
        done = self.done + fetched
        if not partition_done:
            return replace(self, page=self.page + 1, done=done)
        nxt = self.pending[0] if self.pending else None
        return replace(self, current=nxt, page=1, pending=self.pending[1:], done=done)

    def sized(self, total: int) -> tuple[Plan, SplitGroup | None]:
        """Count the current partition's `total` into its split; the split if this completed it.

        A plan from an older checkpoint has no groups: its pending children are not counted.
        """
        if not self.splits:
            return self, None
        group = self.splits[-1]
        group = replace(group, left=group.left - 1, covered=group.covered + total)
        if group.left > 0:
            return replace(self, splits=(*self.splits[:-1], group)), None
        missing = max(0, group.total - group.covered)
        return replace(self, splits=self.splits[:-1], missed=self.missed + missing), group

    def split(
        self, partition: Filters, total: int, children: Sequence[Filters], dimension: str = ""
    ) -> Plan:
        """Read `children` (overrides of `partition`) next; their totals should add to `total`."""
        merged = tuple({**partition, **child} for child in children)
        group = SplitGroup(partition, total, len(merged), 0, dimension, len(merged))
        return replace(
            self,
            current=merged[0],
            page=1,
            pending=merged[1:] + self.pending,
            splits=(*self.splits, group),
        )

    def unsplit(self) -> Plan:
        """Undo the innermost split, whose dimension did not narrow: back at its parent (already
        sized in its own split), its other children dropped, the dimension never used again."""
        group = self.splits[-1]
        return replace(
            self,
            current=group.partition,
            page=1,
            pending=self.pending[group.left - 1 :],
            splits=self.splits[:-1],
            skip=(*self.skip, group.dimension),
        )


@dataclass(frozen=True, slots=True)
class SearchResult(Generic[T]):
    total: int
    items: list[T]


def walk(
    plan: Plan,
    *,
    base: Filters,
    fetch: Callable[[Filters, int], SearchResult[T]],
    dimensions: Sequence[Dimension],
    cap: int,
    per_page: int,
    ctx: RunContext,
    event_prefix: str,
    short_page_retries: int = 3,
    counts_end_paging: bool = True,
) -> Iterator[tuple[list[T], Plan]]:
    """Yield each non-empty page of every partition with the plan that resumes after it
    (and a last empty page when matches were found missed after the last non-empty one).

    `cap` is the most records one search can reach (records cap, or pages cap times `per_page`).
    A page shorter than the totals promise is fetched again (`short_page_retries` times), then
    taken as it is with a warning: page numbers, not record counts, drive the walk. With
    `counts_end_paging` False (a provider whose counts cannot be relied on to end a search) a
    partition ends only on a short or empty page or at `cap`, never on its count alone.

    A split whose first two children each match everything their parent does did not narrow the
    search (the provider ignores that filter): it is undone at once and the parent is split on
    the next dimension, instead of recursing down that dimension to single values.
    """
    started = plan.current is not None
    reported_missed = plan.missed
    while plan.current is not None and not ctx.should_stop():
        current = plan.current
        filters = {**base, **current}
        result = fetch(filters, plan.page)
        if plan.total is None:
            plan = replace(plan, total=result.total)
        narrows = True
        if plan.page == 1 and _suspect(plan, result.total):
            split = plan.splits[-1]
            narrows = fetch({**base, **plan.pending[0]}, 1).total != split.total
            if narrows:  # the second child was read last (a job loop may track that): again
                result = fetch(filters, 1)
            else:
                ctx.log.warning(
                    f"{event_prefix}.partition_not_narrowing",
                    message=f"splitting on {split.dimension} left its children with all "
                    f"{split.total} matches (the filter is ignored): split on the next dimension",
                    partition=split.partition,
                    dimension=split.dimension,
                    total=split.total,
                )
                plan = plan.unsplit()  # this child's page is the parent's: its filter is ignored
                current = plan.current or {}
                filters = {**base, **current}
        if plan.page == 1 and narrows:
            plan, group = plan.sized(result.total)
            if group is not None and group.covered < group.total:
                _warn_incomplete(ctx, event_prefix, group)
        if plan.page == 1 and result.total > cap:
            choice = choose_split(filters, dimensions, plan.skip)
            if choice is not None:
                dimension, children = choice
                ctx.log.info(
                    f"{event_prefix}.partition_split",
                    partition=current,
                    total=result.total,
                    children=len(children),
                    dimension=dimension,
                )
                plan = plan.split(current, result.total, children, dimension)
                continue
            ctx.log.warning(
                f"{event_prefix}.partition_unsplittable",
                partition=current,
                total=result.total,
                cap=cap,
                skipped=result.total - cap,
            )
            plan = replace(plan, missed=plan.missed + result.total - cap)
        reachable = min(result.total, cap)
        expected = max(0, min(per_page, reachable - (plan.page - 1) * per_page))
        for _ in range(short_page_retries):
            if len(result.items) >= expected:
                break
            result = fetch(filters, plan.page)  # a short page mid-stream: ask again
        if len(result.items) < expected:
            ctx.log.warning(
                f"{event_prefix}.short_page",
                partition=current,
                page=plan.page,
                expected=expected,
                got=len(result.items),
            )
        if counts_end_paging:
            items = result.items[:expected]
            partition_done = plan.page * per_page >= reachable
        else:  # trust the pages: a short or empty page ends the partition, or the window
            items = result.items[:per_page]
            partition_done = len(items) < per_page or plan.page * per_page >= cap
        nxt = plan.advance(len(items), partition_done)
        if items:
            yield items, nxt
            reported_missed = nxt.missed
        else:
            ctx.heartbeat()
        plan = nxt
    if started and plan.current is None and plan.missed > reported_missed:
        # the last partitions were empty but completed a split with a gap: one empty page
        # carries the final `missed` (and the finished plan) to the job
        yield [], plan
    if started and plan.current is None:  # finished here, not stopped: the search's summary
        report = ctx.log.warning if plan.missed else ctx.log.info
        report(
            f"{event_prefix}.search_finished",
            total=plan.total,
            fetched=plan.done,
            missed=plan.missed,
        )


def _suspect(plan: Plan, total: int) -> bool:
    """Whether the innermost split may not narrow: its first child (being sized, `total`)
    matches everything its parent does. If the second does too, the split did not narrow:
    children are disjoint, so only a provider ignoring the filter split on answers that."""
    group = plan.splits[-1] if plan.splits else None
    return group is not None and bool(plan.pending) and group.first_child_like_parent(total)


def _warn_incomplete(ctx: RunContext, event_prefix: str, group: SplitGroup) -> None:
    missing = group.total - group.covered
    ctx.log.warning(
        f"{event_prefix}.partition_incomplete",
        message=f"{missing} of {group.total} matches of {group.partition or 'the search'} "
        "fall in none of the partitions it was split into and cannot be fetched",
        partition=group.partition,
        total=group.total,
        covered=group.covered,
        missing=missing,
    )
