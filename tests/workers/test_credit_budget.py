"""A data source's credit budget pauses a job mid-enrichment; raising it finishes the job.

The runner, real PostgreSQL and Redis, and the Apollo emulator over HTTP (it charges a credit
per matched person on `/people/bulk_match`). The job stops after exactly the budget's worth of
enriched people, paused with `budget_exhausted` (not failed); after the budget is raised and the
job resumed it carries on from the checkpoint and nobody is paid for twice. The ledger holds
what was spent, in the page transactions that spent it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connectors.providers.zoominfo import connector as zoominfo
from connectors.sandbox.apollo import ApolloEmulator
from connectors.sandbox.generic import GenericEmulator
from connectors.sandbox.zoominfo import ZoomInfoEmulator
from models import DataSource, Lead, Notification, job_states
from models.credits import CreditEntry
from tests.factories import make_job, make_source
from tests.workers.conftest import World
from tests.workers.test_enrichment_park import APOLLO, ZOOMINFO, get_job, paid_ids, provider_job
from workers.runner import Runner


def _enriched(world: World) -> int:
    with Session(world.engine) as session:
        count = session.scalar(
            select(func.count()).select_from(Lead).where(Lead.email.is_not(None))
        )
    return int(count or 0)


def _ledger(world: World) -> int:
    with Session(world.engine) as session:
        return int(session.scalar(select(func.coalesce(func.sum(CreditEntry.credits), 0))) or 0)


def test_a_50_credit_budget_pauses_at_50_and_raising_it_finishes_without_paying_twice(
    world: World, runner: Runner
) -> None:
    people = 130
    with ApolloEmulator(people=people, seed=4) as emu:
        # Given an Apollo source that enriches, with a per-job budget of 50 credits
        job_id = provider_job(world, APOLLO, emu)
        job = get_job(world, job_id)
        with Session(world.engine) as session, session.begin():
            session.execute(
                update(DataSource)
                .where(DataSource.id == job.data_source_id)
                .values(job_credit_budget=50)
            )

        # When the job runs
        assert runner.run(job_id) == "paused"

        # Then it stopped at 50 enriched people, paused for its budget, with 50 credits booked
        job = get_job(world, job_id)
        assert (job.status, job.pause_reason, job.resume_at) == ("paused", "budget_exhausted", None)
        assert job.credits_used == 50 == _ledger(world)
        assert _enriched(world) == 50
        assert sum(paid_ids(emu, APOLLO).values()) == 50
        with Session(world.engine) as session:
            kinds = session.scalars(select(Notification.kind)).all()
        assert "job.budget_exhausted" in kinds

        # When the budget is raised and the job resumed
        with Session(world.engine) as session, session.begin():
            session.execute(
                update(DataSource)
                .where(DataSource.id == job.data_source_id)
                .values(job_credit_budget=1000)
            )
            job_states.resume(session, job_id)
        assert runner.run(job_id) == "completed", get_job(world, job_id).error
        paid = paid_ids(emu, APOLLO)

    # Then everyone is enriched, each paid for once, and the ledger agrees with the job
    job = get_job(world, job_id)
    assert (job.fetched, job.inserted, job.rejected) == (people, people, 0)
    assert len(paid) == people and max(paid.values()) == 1
    assert _enriched(world) == people
    assert job.credits_used == people == _ledger(world)


def test_a_monthly_budget_counts_every_job_of_the_source(world: World, runner: Runner) -> None:
    with ApolloEmulator(people=40, seed=4) as emu:
        first = provider_job(world, APOLLO, emu)
        source_id = get_job(world, first).data_source_id
        with Session(world.engine) as session, session.begin():
            session.execute(
                update(DataSource)
                .where(DataSource.id == source_id)
                .values(monthly_credit_budget=60)
            )
        assert runner.run(first) == "completed"
        assert get_job(world, first).credits_used == 40
        # a second job of the same source may spend only what the month has left: 20
        second = make_job(world.engine, world.domain_id, source_id, APOLLO.params, world.user_id)
        with Session(world.engine) as session, session.begin():
            job_states.start(session, second)
        assert runner.run(second) == "paused"
        assert get_job(world, second).credits_used == 20
        assert get_job(world, second).pause_reason == "budget_exhausted"
    assert _ledger(world) == 60


def test_zoominfo_usage_header_lands_on_the_data_source(
    world: World, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zoominfo._Tokens, "cache", {})
    monkeypatch.setattr(zoominfo._Tokens, "next_auth", {})
    with ZoomInfoEmulator(people=30, seed=4, record_limit=500) as emu:
        job_id = provider_job(world, ZOOMINFO, emu)
        assert runner.run(job_id) == "completed"
    with Session(world.engine) as session:
        source = session.get(DataSource, get_job(world, job_id).data_source_id)
        assert source is not None
        assert source.credit_balance == 470 and source.credit_balance_at is not None


@pytest.mark.parametrize("generic_emulator", [{"records": 60, "auth": "none"}], indirect=True)
def test_a_billable_generic_api_pauses_at_its_budget_and_books_every_page_once(
    world: World, runner: Runner, generic_emulator: GenericEmulator
) -> None:
    emu = generic_emulator
    # Given a generic API charging a credit per record, on a source with a per-job budget of 25
    config = {
        "url": f"{emu.url}{emu.path}",
        "records_path": "data.items",
        "total_path": "meta.total",
        "pagination": {"type": "page", "page_param": "page", "size_param": "size", "page_size": 10},
        "field_map": {"email": "email", "first_name": "first_name"},
        "billing": {"credits_per_record": 1},
    }
    source = make_source(world.engine, world.domain_id, "generic_api", config)
    job_id = make_job(world.engine, world.domain_id, source, {}, world.user_id)
    with Session(world.engine) as session, session.begin():
        session.execute(
            update(DataSource).where(DataSource.id == source).values(job_credit_budget=25)
        )
        job_states.start(session, job_id)
    # When the job runs
    assert runner.run(job_id) == "paused"
    # Then it paused for its budget after the page that crossed it, every page booked
    job = get_job(world, job_id)
    assert (job.pause_reason, job.inserted) == ("budget_exhausted", 30)
    assert job.credits_used == 30 == _ledger(world)
    # When the budget is raised and the job resumed, it finishes; no page is asked for twice
    with Session(world.engine) as session, session.begin():
        session.execute(
            update(DataSource).where(DataSource.id == source).values(job_credit_budget=1000)
        )
        job_states.resume(session, job_id)
    assert runner.run(job_id) == "completed", get_job(world, job_id).error
    job = get_job(world, job_id)
    assert (job.fetched, job.inserted) == (60, 60)
    assert job.credits_used == 60 == _ledger(world)
    served = [r.query for r in emu.stats.requests_to(emu.path)]
    assert len(served) == len(set(served))
