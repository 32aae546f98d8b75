"""A real job parked in the middle of paid enrichment pays for each person once (issue 13, item 4).

The runner, real PostgreSQL and Redis, and the Apollo / ZoomInfo emulators over HTTP with their
enrichment endpoint allowed a few calls an hour. The job parks (`paused`, `rate_limited`,
`resume_at` an hour away) part-way through a page; the reaper's `resume_due` puts it back once
`resume_at` has come, and the runner resumes it from the committed checkpoint. At the end every
person is a lead with an email, and the emulator charged each person exactly once. A worker
shutting down commits a page that already spent credits before it hands the job back.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connectors.base import Page
from connectors.providers.synthetic import SyntheticConnector, synthetic_lead
from connectors.providers.zoominfo import connector as zoominfo
from connectors.sandbox.apollo import BULK_MATCH, ApolloEmulator
from connectors.sandbox.limits import Window
from connectors.sandbox.server import Emulator
from connectors.sandbox.zoominfo import ENRICH, ZoomInfoEmulator
from models import Job, JobLog, Lead, job_states
from runtime.crypto import encrypt_json
from runtime.settings import get_settings
from tests.factories import make_job, make_source
from tests.workers.conftest import World
from workers.runner import Runner


@dataclass(frozen=True)
class Provider:
    """How to point a data source of one provider at its emulator, and read what it charged."""

    type: str
    enrich_path: str
    calls_per_hour: int
    config: Callable[[Any], dict[str, Any]]
    secrets: dict[str, str]
    params: dict[str, Any]
    paid_key: tuple[str, str]  # request body list, and the person id field in each item


APOLLO = Provider(
    "apollo",
    BULK_MATCH,
    4,  # 10 people a call: a park after 40 people
    lambda emu: {"base_url": emu.url + "/api/v1", "search_hourly_limit": None, "enrich": True},
    {"api_key": "apollo-test-key"},
    {"per_page": 100},
    ("details", "id"),
)
ZOOMINFO = Provider(
    "zoominfo",
    ENRICH,
    3,  # 25 contacts a call: a park after 75 contacts
    lambda emu: {"base_url": emu.url, "username": "zoominfo-user", "enrich": True},
    {"password": "zoominfo-pass"},
    {"rpp": 100},
    ("matchPersonInput", "personId"),
)


def open_enrichment_window(emu: Emulator, provider: Provider) -> None:
    """A fresh hourly window on the enrichment endpoint (429 with Retry-After past the limit)."""
    emu.windows["enrich"] = Window(
        "enrich",
        provider.calls_per_hour,
        3600.0,
        fixed=True,
        paths=frozenset({provider.enrich_path}),
        opened_at=emu.clock.now(),  # the hour starts now: Retry-After is about an hour
    )


def paid_ids(emu: Emulator, provider: Provider) -> Counter[str]:
    """Person ids in every enrichment request the emulator answered 200, i.e. charged for."""
    key, field = provider.paid_key
    paid: Counter[str] = Counter()
    for request in emu.stats.requests_to(provider.enrich_path):
        if request.status == 200:
            paid.update(str(item[field]) for item in json.loads(request.body)[key])
    return paid


def provider_job(world: World, provider: Provider, emu: Emulator) -> uuid.UUID:
    secret = encrypt_json(get_settings().require_secret_key(), provider.secrets)
    source = make_source(world.engine, world.domain_id, provider.type, provider.config(emu), secret)
    job_id = make_job(world.engine, world.domain_id, source, provider.params, world.user_id)
    with Session(world.engine) as session, session.begin():
        job_states.start(session, job_id)
    return job_id


def get_job(world: World, job_id: uuid.UUID) -> Job:
    with Session(world.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def run_through_parks(
    world: World, runner: Runner, job_id: uuid.UUID, reopen: Callable[[], None]
) -> int:
    """Run the job; at each park check it, let `resume_at` come (the provider's next window
    opens) and let the reaper's `resume_due` queue it again. Returns the number of parks."""
    parks = 0
    while (outcome := runner.run(job_id)) == "paused":
        job = get_job(world, job_id)
        assert job.pause_reason == "rate_limited" and job.resume_at is not None
        assert job.resume_at > datetime.now(UTC) + timedelta(minutes=30)
        parks += 1
        assert parks < 20, "the job keeps parking"
        reopen()
        with Session(world.engine) as session, session.begin():
            session.execute(update(Job).where(Job.id == job_id).values(resume_at=func.now()))
            assert [m.id for m in job_states.resume_due(session)] == [job_id]
    assert outcome == "completed", get_job(world, job_id).error
    return parks


def committed_checkpoints(world: World, job_id: uuid.UUID) -> list[dict[str, Any]]:
    with Session(world.engine) as session:
        fields = session.scalars(
            select(JobLog.fields)
            .where(JobLog.job_id == job_id, JobLog.event == "page.committed")
            .order_by(JobLog.seq)
        )
        return [f["checkpoint"] for f in fields]


@pytest.mark.parametrize(
    ("provider", "emulator", "people", "parks", "split_pages"),
    # Apollo: 23 calls of 10, 4 an hour; the 5th park falls on a page's first call (nothing to
    # keep). ZoomInfo: 6 calls of 25, 3 an hour; one park, 75 contacts into page 1
    [(APOLLO, ApolloEmulator, 230, 5, 4), (ZOOMINFO, ZoomInfoEmulator, 140, 1, 1)],
    ids=["apollo", "zoominfo"],
)
def test_a_job_parked_mid_enrichment_pays_for_each_person_once(
    world: World,
    runner: Runner,
    monkeypatch: pytest.MonkeyPatch,
    provider: Provider,
    emulator: type[Emulator],
    people: int,
    parks: int,
    split_pages: int,
) -> None:
    monkeypatch.setattr(zoominfo._Tokens, "cache", {})  # JWTs of this test's own
    monkeypatch.setattr(zoominfo._Tokens, "next_auth", {})
    with emulator(people=people, seed=4) as emu:  # type: ignore[call-arg]
        # Given a provider that allows a few enrichment calls an hour, and a job enriching
        open_enrichment_window(emu, provider)
        job_id = provider_job(world, provider, emu)
        # When the job runs, parks, and is resumed by the reaper each time its hour is over
        assert (
            run_through_parks(world, runner, job_id, lambda: open_enrichment_window(emu, provider))
            == parks
        )
        paid = paid_ids(emu, provider)
    # Then every park committed the people enriched before it, with the page to read again
    checkpoints = committed_checkpoints(world, job_id)
    assert sum(1 for c in checkpoints if "redo" in c) == split_pages
    assert "redo" not in checkpoints[-1]
    # and every person is a lead with an email, paid for exactly once
    job = get_job(world, job_id)
    assert (job.fetched, job.inserted, job.rejected) == (people, people, 0)
    assert len(paid) == people and max(paid.values()) == 1
    assert job.credits_used == people
    with Session(world.engine) as session:
        leads = session.scalar(
            select(func.count()).select_from(Lead).where(Lead.email.is_not(None))
        )
    assert leads == people


def test_a_page_that_spent_credits_is_committed_before_a_graceful_stop(
    world: World, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while a paid page is ready: committed first, so the restarted job never pays
    for it again; an unpaid page is still left to be fetched again, as before."""

    class PaidThenShutdown(SyntheticConnector):
        def pages(self, config, params, checkpoint, ctx):  # type: ignore[no-untyped-def]
            runner.shutdown.set()  # the worker got SIGTERM while this page was being enriched
            yield Page([synthetic_lead(0), synthetic_lead(1)], {"next": 2}, credits_used=2)
            if not ctx.should_stop():
                yield Page([synthetic_lead(2)], {"next": 3})

    monkeypatch.setattr("workers.runner.get_connector_class", lambda _t: PaidThenShutdown)
    job_id = world.queued_job(total=3)
    assert runner.run(job_id) == "queued"  # handed back for another worker
    job = get_job(world, job_id)
    assert (job.pages, job.inserted, job.credits_used) == (1, 2, 2)
    assert job.checkpoint == {"next": 2}
