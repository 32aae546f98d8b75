"""A rate-limit park in the middle of enriching a page keeps what was paid for (issue 13, item 4).

Apollo and ZoomInfo emulators over HTTP, with their enrichment endpoint limited to a few calls
per hour: the job parks (`RateLimited`) part-way through a page's paid enrichment. The people
enriched so far come out as a page of their own whose checkpoint names the search page to read
again; the job resumed from it (once the next window opens) enriches
only the others. Across every park and resume, each person is paid for exactly once (counted
from the enrichment requests the emulator answered 200) and arrives exactly once. A pause that
arrives while a throttled enrichment call is being waited out keeps what was paid for the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.base import Connector, Page
from connectors.errors import RateLimited
from connectors.kit.testing import LocalRunContext
from connectors.providers.apollo import ApolloConfig, ApolloConnector, ApolloParams
from connectors.providers.zoominfo.connector import (
    ZoomInfoConfig,
    ZoomInfoConnector,
    ZoomInfoParams,
)
from connectors.sandbox.apollo import BULK_MATCH, ApolloEmulator
from connectors.sandbox.limits import Window
from connectors.sandbox.server import Emulator
from connectors.sandbox.zoominfo import ENRICH, ZoomInfoEmulator
from runtime.settings import reset_settings_cache

HOUR = 3600.0


@pytest.fixture(autouse=True)
def allow_loopback(zoominfo_isolated: None) -> Iterator[None]:
    """Loopback allowed, ZoomInfo tokens of this test's own (Apollo needs only the former)."""
    yield
    reset_settings_cache()


def limit_enrichment(emu: Emulator, path: str, calls_per_hour: int) -> None:
    """The provider answers 429 (Retry-After: the window's end) past `calls_per_hour`; called
    again, a fresh window opens (without moving the emulator's clock)."""
    emu.windows["enrich"] = Window(
        "enrich",
        calls_per_hour,
        HOUR,
        fixed=True,
        paths=frozenset({path}),
        opened_at=emu.clock.now(),
    )


def paid_ids(emu: Emulator, path: str, key: str, field: str) -> Counter[str]:
    """Person ids sent in every enrichment request the provider answered 200 (it charged)."""
    counts: Counter[str] = Counter()
    for request in emu.stats.requests_to(path):
        if request.status == 200:
            counts.update(str(d[field]) for d in json.loads(request.body)[key])
    return counts


def run_with_parks(
    connector: Connector,
    config: Any,
    params: Any,
    next_window: Callable[[], None],
    max_runs: int = 20,
) -> tuple[list[Page], list[dict[str, Any]]]:
    """Run the job; after each park open the provider's next window (`next_window`) and resume
    from the last committed checkpoint, as the reaper would at `resume_at`."""
    pages: list[Page] = []
    parked_at: list[dict[str, Any]] = []
    checkpoint: dict[str, Any] | None = None
    for _ in range(max_runs):
        try:
            for page in connector.pages(config, params, checkpoint, LocalRunContext()):
                pages.append(page)
                checkpoint = page.checkpoint
            return pages, parked_at
        except RateLimited as exc:
            assert exc.retry_after > 60  # a park, not a throttle the HTTP layer waits out
            parked_at.append(dict(checkpoint or {}))
            next_window()
    raise AssertionError("the job never finished")


def check_each_person_once(
    pages: list[Page], paid: Counter[str], credits_used: int, people: int
) -> None:
    got = [str(r.external_id) for p in pages for r in p.records]
    assert len(got) == people == len(set(got))  # every person arrives, once
    assert paid and max(paid.values()) == 1  # nobody is paid for twice
    assert set(paid) == set(got)  # and everyone was enriched
    assert sum(p.credits_used for p in pages) == credits_used == len(paid)
    assert all(r.email for p in pages for r in p.records)


@pytest.mark.parametrize("apollo_emulator", [{"people": 230, "seed": 4}], indirect=True)
def test_apollo_park_mid_page_resumes_with_the_enriched_people(
    apollo_emulator: ApolloEmulator,
) -> None:
    # Given 230 people, pages of 100, and bulk_match (10 people a call) allowed 4 calls an hour
    emu = apollo_emulator
    limit_enrichment(emu, BULK_MATCH, 4)
    config = ApolloConfig(
        api_key="apollo-test-key",
        base_url=emu.url + "/api/v1",
        search_hourly_limit=None,
        enrich=True,
    )
    # When the job runs, parking whenever Apollo says to wait for the next hour
    params = ApolloParams(per_page=100)
    pages, parks = run_with_parks(
        ApolloConnector(), config, params, lambda: limit_enrichment(emu, BULK_MATCH, 4)
    )
    # Then it parked mid-page, each time after committing the people enriched so far
    assert len(parks) == 5
    first = parks[0]["redo"]
    assert (first["page"], first["count"], len(first["enriched"])) == (1, 100, 40)
    assert len(json.dumps(parks[0])) < 4_000  # ids of one page at most, never records
    # and across parks and resumes every person was paid for exactly once
    paid = paid_ids(emu, BULK_MATCH, "details", "id")
    check_each_person_once(pages, paid, emu.credits_used, 230)
    assert emu.stats.by_status[429] == 5
    assert "redo" not in pages[-1].checkpoint


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 140, "seed": 6}], indirect=True)
def test_zoominfo_park_mid_page_resumes_with_the_enriched_contacts(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    # Given 140 contacts, pages of 100, and /enrich/contact (25 a call) allowed 3 calls an hour
    emu = zoominfo_emulator
    limit_enrichment(emu, ENRICH, 3)
    config = ZoomInfoConfig(
        base_url=emu.url, username="zoominfo-user", password="zoominfo-pass", enrich=True
    )
    # When the job runs, parking whenever ZoomInfo says to wait for the next hour
    params = ZoomInfoParams(rpp=100)
    pages, parks = run_with_parks(
        ZoomInfoConnector(), config, params, lambda: limit_enrichment(emu, ENRICH, 3)
    )
    # Then the first park came after three paid calls, 75 contacts of page 1 committed
    assert len(parks) == 1
    first = parks[0]["redo"]
    assert (first["page"], first["count"], len(first["enriched"])) == (1, 100, 75)
    paid = paid_ids(emu, ENRICH, "matchPersonInput", "personId")
    check_each_person_once(pages, paid, emu.records_used, 140)


def test_a_page_read_again_after_a_park_skips_the_committed_people() -> None:
    """The redo page need not come back in the same order: ids, not positions, are skipped."""
    from connectors.kit.enrichment import Enrichment, PageEnricher, SearchPage
    from connectors.kit.partition import Plan

    sent: list[list[str]] = []

    def enrich(records: list[dict[str, Any]], allowance: int) -> Enrichment:
        sent.append([r["id"] for r in records])
        return Enrichment([{**r, "email": f"{r['id']}@x.io"} for r in records], len(records), 4)

    people = [{"id": f"p{i}", "first_name": "A"} for i in range(6)]
    enricher = PageEnricher(enrich, _lead, LocalRunContext(), "t", budget=None)
    where = SearchPage({"q": "x"}, 3, 6)
    pages = list(enricher.pages(people[::-1], Plan(page=4), where, committed=["p1", "p4"]))
    assert sent == [["p5", "p3", "p2", "p0"]]
    assert [r.external_id for r in pages[0].records] == ["p5", "p3", "p2", "p0"]
    assert "redo" not in pages[0].checkpoint and pages[0].credits_used == 4


def _lead(person: dict[str, Any]) -> Any:
    from records import LeadRecord

    return LeadRecord(
        first_name=person["first_name"], email=person.get("email"), external_id=person["id"]
    )


class PausedDuringWait(LocalRunContext):
    """The operator pauses the job while the HTTP layer waits out a throttled call."""

    def wait(self, seconds: float) -> None:
        self.stop_event.set()
        super().wait(seconds)


@pytest.mark.parametrize("apollo_emulator", [{"people": 100, "seed": 4}], indirect=True)
def test_a_pause_during_an_enrichment_wait_keeps_the_people_enriched(
    apollo_emulator: ApolloEmulator,
) -> None:
    # Given bulk_match allowed 3 calls per 30 s: the 4th call's 429 is a short wait, not a park
    emu = apollo_emulator
    emu.windows["enrich"] = Window(
        "enrich", 3, 30.0, fixed=True, paths=frozenset({BULK_MATCH}), opened_at=emu.clock.now()
    )
    config = ApolloConfig(
        api_key="apollo-test-key",
        base_url=emu.url + "/api/v1",
        search_hourly_limit=None,
        enrich=True,
    )
    params = ApolloParams(per_page=100)
    # When the job is paused during that wait
    pages: list[Page] = []
    with pytest.raises(RateLimited, match="job stopping during a wait"):
        for page in ApolloConnector().pages(config, params, None, PausedDuringWait()):
            pages.append(page)
    # Then the 30 people already paid for are committed, with the page to read again
    assert [len(p.records) for p in pages] == [30] and all(r.email for r in pages[0].records)
    assert len(pages[0].checkpoint["redo"]["enriched"]) == 30
    # and the resumed job pays only for the other 70
    emu.windows.pop("enrich")
    rest = list(ApolloConnector().pages(config, params, pages[0].checkpoint, LocalRunContext()))
    check_each_person_once(
        pages + rest, paid_ids(emu, BULK_MATCH, "details", "id"), emu.credits_used, 100
    )
