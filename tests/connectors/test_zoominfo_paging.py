"""ZoomInfo paging and partitioning against the emulator answering as documented
(`maxResults` = matches, `totalResults` = records on the page), and answering with the counts
swapped: both readings must yield every contact. Also a provider that ignores a filter: a split
along it does not narrow the search and is abandoned at once.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import Page
from connectors.kit import partition_walk
from connectors.kit.testing import LocalRunContext
from connectors.providers.zoominfo.connector import (
    ZoomInfoConfig,
    ZoomInfoConnector,
    ZoomInfoParams,
)
from connectors.sandbox.zoominfo import ID_BASE, ZoomInfoEmulator

SEARCH = "/search/contact"


@pytest.fixture(autouse=True)
def isolated(zoominfo_isolated: None) -> None:
    """Every test here talks to the emulator with a token cache of its own."""


def config(emu: ZoomInfoEmulator, **overrides: Any) -> ZoomInfoConfig:
    values: dict[str, Any] = {
        "base_url": emu.url,
        "username": "zoominfo-user",
        "password": "zoominfo-pass",
    }
    return ZoomInfoConfig(**(values | overrides))


def run(
    cfg: ZoomInfoConfig, params: ZoomInfoParams, ctx: LocalRunContext | None = None
) -> list[Page]:
    return list(ZoomInfoConnector().pages(cfg, params, None, ctx or LocalRunContext()))


def ids(pages: list[Page]) -> list[str]:
    return [str(r.external_id) for p in pages for r in p.records]


def everyone(emu: ZoomInfoEmulator) -> set[str]:
    return {str(ID_BASE + i) for i in range(emu.dataset.size)}


@pytest.mark.parametrize(
    "zoominfo_emulator",
    [
        {"people": 800, "token_ttl_s": 1.5, "latency_ms": 200.0},
        {"people": 800, "token_ttl_s": 1.5, "latency_ms": 200.0, "counts": "swapped"},
    ],
    indirect=True,
    ids=["documented", "swapped"],
)
def test_800_contacts_with_a_token_living_1_5_s_yield_800_leads(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    # Given 800 matches (eight pages of 100), JWTs that live 1.5 s, and 200 ms per request
    emu = zoominfo_emulator
    ctx = LocalRunContext()
    # When the job runs (about 2 s: the token runs out mid-job)
    got = ids(run(config(emu), ZoomInfoParams(rpp=100), ctx))
    # Then every contact arrives once, read with the tokens renewed on the way
    assert len(got) == len(set(got)) == 800 and set(got) == everyone(emu)
    assert emu.tokens_issued >= 2
    assert emu.windows["authenticate"].violations == 0
    assert "zoominfo.counts_disagree" not in ctx.log.events()


@pytest.mark.parametrize(
    "zoominfo_emulator",
    [{"people": 2_500}, {"people": 2_500, "counts": "swapped"}],
    indirect=True,
    ids=["documented", "swapped"],
)
def test_2500_contacts_come_back_through_partitioning(zoominfo_emulator: ZoomInfoEmulator) -> None:
    emu = zoominfo_emulator
    ctx = LocalRunContext()
    got = ids(run(config(emu), ZoomInfoParams(rpp=100), ctx))
    assert len(got) == len(set(got)) == 2_500 and set(got) == everyone(emu)
    splits = [f for _, e, f in ctx.log.lines if e == "zoominfo.partition_split"]
    assert splits[0]["total"] == 2_500 and splits[0]["dimension"] == "employees"
    assert emu.stats.by_status.get(400, 0) == 0  # never paged past the 1,000-record window
    finished = [f for _, e, f in ctx.log.lines if e == "zoominfo.search_finished"]
    assert finished == [{"total": 2_500, "fetched": 2_500, "missed": 0}]


IGNORED = ("employeeRangeMin", "employeeRangeMax")


@pytest.mark.parametrize(
    "zoominfo_emulator", [{"people": 2_500, "ignored_filters": IGNORED}], indirect=True
)
def test_a_split_the_provider_ignores_is_skipped_at_once(
    zoominfo_emulator: ZoomInfoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a ZoomInfo that accepts and ignores the headcount filters, and a job over headcounts
    # 1 to 16 (the user's own range: an exhaustive split, tried first)
    emu = zoominfo_emulator
    params = ZoomInfoParams(employeeRangeMin=1, employeeRangeMax=16, rpp=100)
    cfg = config(emu, partition_by=["employees", "managementLevel"])
    ctx = LocalRunContext()
    # When the job runs
    got = ids(run(cfg, params, ctx))
    searches = len(emu.stats.requests_to(SEARCH))
    # Then the first headcount split is seen not to narrow and management levels split instead
    assert len(got) == len(set(got)) == 2_500 and set(got) == everyone(emu)
    skipped = [f for _, e, f in ctx.log.lines if e == "zoominfo.partition_not_narrowing"]
    assert [(s["dimension"], s["total"]) for s in skipped] == [("employees", 2_500)]
    splits = [f["dimension"] for _, e, f in ctx.log.lines if e == "zoominfo.partition_split"]
    assert splits == ["employees", "managementLevel"]
    # and it takes a fraction of the searches that recursing down to single headcounts takes
    monkeypatch.setattr(partition_walk, "_suspect", lambda plan, total: False)
    before = len(emu.stats.requests_to(SEARCH))
    recursed = ids(run(cfg, params))
    recursing = len(emu.stats.requests_to(SEARCH)) - before
    assert set(recursed) == everyone(emu) and len(recursed) == 16 * 2_500  # everyone 16 times
    print(f"searches: {searches} skipping the ignored filter, {recursing} recursing into it")
    assert searches * 10 < recursing


@pytest.mark.parametrize(
    "zoominfo_emulator", [{"people": 2_500, "ignored_filters": IGNORED}], indirect=True
)
def test_resuming_after_a_skipped_split_yields_exactly_the_rest(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    emu = zoominfo_emulator
    params = ZoomInfoParams(employeeRangeMin=1, employeeRangeMax=16, rpp=100)
    cfg = config(emu, partition_by=["employees", "managementLevel"])
    pages = run(cfg, params)
    full = ids(pages)
    assert pages[0].checkpoint["skip"] == ["employees"]
    for k in (0, 1, 4, 9, len(pages) - 2):
        # Given a job stopped after page k (its checkpoint carries the skipped dimension)
        checkpoint = pages[k].checkpoint
        ctx = LocalRunContext()
        rest = ids(list(ZoomInfoConnector().pages(cfg, params, checkpoint, ctx)))
        # Then the resumed job reads exactly the rest, and never splits on headcount again
        assert rest == full[sum(len(p.records) for p in pages[: k + 1]) :], k
        assert "zoominfo.partition_not_narrowing" not in ctx.log.events(), k
