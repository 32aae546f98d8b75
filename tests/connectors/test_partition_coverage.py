"""Nothing lost silently: Apollo and ZoomInfo walks over HTTP against the emulators, where one
place (Auckland, New Zealand) lies outside the default partition countries.

A search too big for one request and that only a country list can split must fetch everyone in
the listed countries, and report exactly how many matches it could not reach, also when the job is
stopped mid-split and resumed from its checkpoint. Exhaustive splits must report nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.base import Page
from connectors.kit.partition import COUNTRIES
from connectors.kit.testing import LocalRunContext
from connectors.providers.apollo import (
    EMPLOYEE_BUCKETS,
    ApolloConfig,
    ApolloConnector,
    ApolloParams,
)
from connectors.providers.zoominfo.connector import (
    ZoomInfoConfig,
    ZoomInfoConnector,
    ZoomInfoParams,
)
from connectors.sandbox.apollo import ApolloEmulator
from connectors.sandbox.dataset import Dataset
from connectors.sandbox.zoominfo import ID_BASE, ZoomInfoEmulator

#: 12,000 people: the most common headcount has 240 of them, 3 in Auckland, 118 in the US
WORLD = {"people": 12_000, "seed": 0}
CAP = 200  # over the US share of that headcount, under the whole of it
PER_PAGE = 20
OUTSIDE = ["New Zealand"]


@pytest.fixture(autouse=True)
def isolated(zoominfo_isolated: None) -> None:
    """Every test here talks to the emulators with a token cache of its own."""


def busiest_headcount(dataset: Dataset) -> int:
    """The employee count shared by most people: no headcount range can split it further."""
    counts = Counter(c.employees for c in dataset.companies)
    return max(counts, key=lambda n: len(dataset.select(employee_ranges=[(n, n)])))


def apollo_config(emu: ApolloEmulator, **overrides: Any) -> ApolloConfig:
    values: dict[str, Any] = {
        "api_key": "apollo-test-key",
        "base_url": emu.url + "/api/v1",
        "search_hourly_limit": None,
        "max_records": emu.max_records,
    }
    return ApolloConfig(**(values | overrides))


def apollo_ids(emu: ApolloEmulator, **filters: Any) -> set[str]:
    selection = emu.dataset.select(**filters)
    return {emu.person_id(i) for i in selection.indices(0, len(selection))}


def zoominfo_ids(emu: ZoomInfoEmulator, **filters: Any) -> set[str]:
    selection = emu.dataset.select(**filters)
    return {str(ID_BASE + i) for i in selection.indices(0, len(selection))}


def ids(pages: list[Page]) -> list[str]:
    return [str(r.external_id) for p in pages for r in p.records]


def logged(ctx: LocalRunContext, event: str) -> list[tuple[str, dict[str, Any]]]:
    """(level, fields without the free-text message) of each `event` line."""
    return [
        (level, {k: v for k, v in fields.items() if k != "message"})
        for level, e, fields in ctx.log.lines
        if e == event
    ]


def run_apollo(
    cfg: ApolloConfig,
    params: ApolloParams,
    checkpoint: dict[str, Any] | None = None,
    stop_after: int | None = None,
) -> tuple[list[Page], LocalRunContext]:
    """Pages of one run, stopped (as a pause would) once `stop_after` pages were handed over."""
    ctx = LocalRunContext()
    pages: list[Page] = []
    for page in ApolloConnector().pages(cfg, params, checkpoint, ctx):
        pages.append(page)
        if len(pages) == stop_after:
            ctx.stop_event.set()
    return pages, ctx


@dataclass(frozen=True)
class OneHeadcount:
    """A search for the busiest headcount: over the cap, and only countries can split it."""

    params: ApolloParams
    everyone: set[str]
    reachable: set[str]  # in one of the default countries
    outside: set[str]


def one_headcount(emu: ApolloEmulator) -> OneHeadcount:
    size = busiest_headcount(emu.dataset)
    rng = [(size, size)]
    params = ApolloParams(organization_num_employees_ranges=[f"{size},{size}"], per_page=PER_PAGE)
    everyone = apollo_ids(emu, employee_ranges=rng)
    reachable = apollo_ids(emu, employee_ranges=rng, countries=list(COUNTRIES))
    outside = apollo_ids(emu, employee_ranges=rng, countries=OUTSIDE)
    assert len(everyone) > CAP and len(outside) == 3 and everyone == reachable | outside
    return OneHeadcount(params, everyone, reachable, outside)


@pytest.mark.parametrize("apollo_emulator", [WORLD | {"max_records": CAP}], indirect=True)
def test_apollo_reports_exactly_who_the_country_split_cannot_reach(
    apollo_emulator: ApolloEmulator,
) -> None:
    # Given one headcount (240 people, over the cap) that only the default countries can split
    emu = apollo_emulator
    search = one_headcount(emu)
    everyone, reachable, outside = search.everyone, search.reachable, search.outside
    # When the job runs with the default configuration
    pages, ctx = run_apollo(apollo_config(emu), search.params)
    # Then everyone in a listed country arrives once, and the rest is reported, exactly
    got = ids(pages)
    assert len(got) == len(set(got)) and set(got) == reachable
    assert logged(ctx, "apollo.partition_incomplete") == [
        (
            "warning",
            {"partition": {}, "total": len(everyone), "covered": len(reachable), "missing": 3},
        )
    ]
    summary = {"total": len(everyone), "fetched": len(reachable), "missed": len(outside)}
    assert logged(ctx, "apollo.search_finished") == [("warning", summary)]
    message = next(f["message"] for _, e, f in ctx.log.lines if e.endswith("_incomplete"))
    assert f"{len(outside)} of {len(everyone)}" in message


@pytest.mark.parametrize("apollo_emulator", [WORLD | {"max_records": CAP}], indirect=True)
def test_apollo_stopped_and_resumed_mid_split_still_reports_once_and_exactly(
    apollo_emulator: ApolloEmulator,
) -> None:
    emu = apollo_emulator
    search = one_headcount(emu)
    cfg, params = apollo_config(emu), search.params
    reachable, missing = search.reachable, len(search.outside)
    full, _ = run_apollo(cfg, params)
    assert sum(1 for p in full if p.checkpoint["splits"]) >= 10  # most pages stop mid-split
    for k in range(1, len(full)):
        # Given a job stopped after page k, its checkpoint stored as JSON
        first, ctx1 = run_apollo(cfg, params, stop_after=k)
        assert len(first) == k
        checkpoint = json.loads(json.dumps(first[-1].checkpoint))
        assert len(json.dumps(checkpoint)) < 2_000
        # When it resumes from there
        rest, ctx2 = run_apollo(cfg, params, checkpoint)
        # Then the two runs fetch everyone reachable once and report the gap once, exactly
        got = ids(first) + ids(rest)
        assert len(got) == len(set(got)) and set(got) == reachable, k
        gaps = logged(ctx1, "apollo.partition_incomplete") + logged(
            ctx2, "apollo.partition_incomplete"
        )
        assert [fields["missing"] for _, fields in gaps] == [missing], k
        assert logged(ctx1, "apollo.search_finished") == [], k
        (_, summary), *more = logged(ctx2, "apollo.search_finished")
        assert not more and summary["missed"] == missing, k
        assert summary["fetched"] == len(reachable), k


@pytest.mark.parametrize(
    "apollo_emulator", [{"people": 1_200, "seed": 3, "max_records": 300}], indirect=True
)
def test_apollo_headcount_splits_come_first_and_report_nothing(
    apollo_emulator: ApolloEmulator,
) -> None:
    # Given the whole population, over the cap, and locations configured before headcount
    emu = apollo_emulator
    cfg = apollo_config(emu, partition_by=["person_locations", "employees"])
    pages, ctx = run_apollo(cfg, ApolloParams(per_page=100))
    # Then headcount ranges split it (they miss no one), so everyone arrives, Auckland too
    got = ids(pages)
    assert len(got) == len(set(got)) and set(got) == apollo_ids(emu)
    assert set(got) & apollo_ids(emu, countries=OUTSIDE)
    splits = [f for _, e, f in ctx.log.lines if e == "apollo.partition_split"]
    assert splits[0] == {
        "partition": {},
        "total": 1_200,
        "children": len(EMPLOYEE_BUCKETS),
        "dimension": "employees",
    }
    assert logged(ctx, "apollo.partition_incomplete") == []
    summary = {"total": 1_200, "fetched": 1_200, "missed": 0}
    assert logged(ctx, "apollo.search_finished") == [("info", summary)]


def zoominfo_config(emu: ZoomInfoEmulator, **overrides: Any) -> ZoomInfoConfig:
    values: dict[str, Any] = {
        "base_url": emu.url,
        "username": "zoominfo-user",
        "password": "zoominfo-pass",
        "max_records": CAP,
    }
    return ZoomInfoConfig(**(values | overrides))


def run_zoominfo(cfg: ZoomInfoConfig, params: ZoomInfoParams) -> tuple[list[Page], LocalRunContext]:
    ctx = LocalRunContext()
    return list(ZoomInfoConnector().pages(cfg, params, None, ctx)), ctx


@pytest.mark.parametrize("zoominfo_emulator", [WORLD], indirect=True)
def test_zoominfo_reports_exactly_who_the_country_split_cannot_reach(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    emu = zoominfo_emulator
    size = busiest_headcount(emu.dataset)
    rng = [(size, size)]
    params = ZoomInfoParams(employeeRangeMin=size, employeeRangeMax=size, rpp=PER_PAGE)
    everyone = zoominfo_ids(emu, employee_ranges=rng)
    reachable = zoominfo_ids(emu, employee_ranges=rng, countries=list(COUNTRIES))
    outside = everyone - reachable
    assert len(everyone) > CAP and len(outside) == 3
    pages, ctx = run_zoominfo(zoominfo_config(emu, partition_by=["employees", "country"]), params)
    got = ids(pages)
    assert len(got) == len(set(got)) and set(got) == reachable
    gap = {"partition": {}, "total": len(everyone), "covered": len(reachable), "missing": 3}
    assert logged(ctx, "zoominfo.partition_incomplete") == [("warning", gap)]
    summary = {"total": len(everyone), "fetched": len(reachable), "missed": 3}
    assert logged(ctx, "zoominfo.search_finished") == [("warning", summary)]


@pytest.mark.parametrize("zoominfo_emulator", [WORLD], indirect=True)
def test_zoominfo_default_levels_are_checked_and_found_complete(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    # Given the same search with the default dimensions: management levels split it first
    emu = zoominfo_emulator
    size = busiest_headcount(emu.dataset)
    params = ZoomInfoParams(employeeRangeMin=size, employeeRangeMax=size, rpp=PER_PAGE)
    pages, ctx = run_zoominfo(zoominfo_config(emu), params)
    # Then every emulated contact has one of the five levels: nothing missed, nothing reported
    got = ids(pages)
    assert len(got) == len(set(got)) and set(got) == zoominfo_ids(
        emu, employee_ranges=[(size, size)]
    )
    splits = [f for _, e, f in ctx.log.lines if e == "zoominfo.partition_split"]
    assert [s["children"] for s in splits] == [5]
    assert logged(ctx, "zoominfo.partition_incomplete") == []
    assert [f["missed"] for _, f in logged(ctx, "zoominfo.search_finished")] == [0]
