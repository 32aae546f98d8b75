"""Fair share and the page clock, with the runner in this process against real PostgreSQL.

- time slice: a job past its slice hands its thread back (`job.yield`: running → queued, message
  sent again) when another job waits, keeping its checkpoint; run again until done, every lead
  is stored once and the counters and the source's metrics add up across slices;
- hold back: a domain at `DASHIN_MAX_RUNNING_PER_DOMAIN`, or running jobs while another domain
  with fewer waits, has its job sent back with a delay, without an acquire (no `attempts`);
- page clock: a page not delivered within `DASHIN_PAGE_TIMEOUT_S` fails the job, not the thread.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from models import DataSource, Job, JobLog, Lead, job_states
from runtime.settings import Settings, get_settings
from tests.workers.conftest import World
from workers.runner import Runner


def _settings(**changes: Any) -> Settings:
    return get_settings().model_copy(update=changes)


@pytest.fixture
def make_runner(engine: Engine, settings_env: None, redis_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redis_url)

    def make(**changes: Any) -> Runner:
        return Runner(engine, _settings(**changes), client, threading.Event())

    yield make
    client.close()


def _job(engine: Engine, job_id: uuid.UUID) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _events(engine: Engine, job_id: uuid.UUID, event: str) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(JobLog.fields)
                .where(JobLog.job_id == job_id, JobLog.event == event)
                .order_by(JobLog.seq)
            )
        )


def _other_domain_waiting(world: World) -> uuid.UUID:
    """A queued job of another domain (it is what makes a slice end worth a hand-back)."""
    from tests.factories import make_domain, make_job, make_source

    domain = make_domain(world.engine)
    source = make_source(world.engine, domain, "synthetic", {"total": 100, "page_size": 100})
    job_id = make_job(world.engine, domain, source, {})
    with Session(world.engine) as session, session.begin():
        job_states.start(session, job_id)
    return job_id


def test_a_job_past_its_slice_yields_and_resumes_from_its_checkpoint(
    world: World, make_runner: Any
) -> None:
    runner = make_runner(job_slice_s=0.3)
    job_id = world.queued_job(total=1000, page_size=100, delay_s=0.1)
    other = _other_domain_waiting(world)
    # When the job runs past its slice while another job waits
    outcomes = [runner.run(job_id)]
    job = _job(world.engine, job_id)
    # Then it handed its thread back after a page, as a declared move, checkpoint and lease kept
    assert outcomes == ["queued"] and job.status == "queued"
    assert 0 < job.pages < 10 and job.checkpoint == {"next": job.pages * 100}
    assert job.attempts == 0
    assert [f.get("lease") for f in _events(world.engine, job_id, "job.started")] == [1]
    with Session(world.engine) as session:
        yields = list(
            session.scalars(
                select(JobLog.message).where(JobLog.job_id == job_id, JobLog.event == "job.yield")
            )
        )
    assert yields == ["time slice used: job handed back to the end of its queue"]
    # And run again (each time to its slice), it ends with every lead once
    while outcomes[-1] == "queued" and len(outcomes) < 20:
        outcomes.append(runner.run(job_id))
    assert outcomes[-1] == "completed" and len(outcomes) >= 3, outcomes
    assert runner.run(other) == "completed"
    job = _job(world.engine, job_id)
    assert (job.pages, job.fetched, job.inserted, job.updated, job.unchanged) == (
        10,
        1000,
        1000,
        0,
        0,
    )
    assert job.started_at is not None and job.lease == len(outcomes)
    pages = _events(world.engine, job_id, "page.committed")
    befores = [(p["checkpoint_before"] or {}).get("next", 0) for p in pages]
    afters = [p["checkpoint"]["next"] for p in pages]
    assert befores == [0, *afters[:-1]] and afters[-1] == 1000  # no page twice, none skipped
    with Session(world.engine) as session:
        leads = session.scalar(
            select(func.count()).select_from(Lead).where(Lead.domain_id == world.domain_id)
        )
        source = session.get(DataSource, world.source_id)
        assert source is not None
    assert leads == 1000
    assert (source.leads_total, source.jobs_total, source.jobs_failed) == (1000, 1, 0)


def test_a_lone_job_keeps_its_thread_past_its_slice(world: World, make_runner: Any) -> None:
    runner = make_runner(job_slice_s=0.05)
    job_id = world.queued_job(total=500, page_size=100, delay_s=0.05)
    assert runner.run(job_id) == "completed"
    assert _events(world.engine, job_id, "job.yield") == []


def _running(world: World) -> uuid.UUID:
    job_id = world.queued_job(total=100, page_size=100)
    with Session(world.engine) as session, session.begin():
        assert job_states.acquire(session, job_id, 5) is not None
    return job_id


def test_a_domain_at_its_limit_is_held_back_without_burning_attempts(
    world: World, make_runner: Any
) -> None:
    runner = make_runner(max_running_per_domain=1, max_attempts=2)
    _running(world)
    job_id = world.queued_job(total=100, page_size=100)
    # When its job is handed to a worker more often than max_attempts
    outcomes = [runner.run(job_id) for _ in range(4)]
    # Then it is held back each time: never acquired, never poisoned, still queued
    assert outcomes == ["held"] * 4
    job = _job(world.engine, job_id)
    assert (job.status, job.attempts, job.lease, job.started_at) == ("queued", 0, 0, None)
    assert _events(world.engine, job_id, "job.acquire") == []


def test_a_domain_waiting_with_fewer_running_goes_first(world: World, make_runner: Any) -> None:
    runner = make_runner(max_running_per_domain=4)
    _running(world)
    second = world.queued_job(total=100, page_size=100)
    other = _other_domain_waiting(world)
    # A domain that runs one job yields its next one to a domain that runs none
    assert runner.run(second) == "held"
    assert runner.run(other) == "completed"
    # and, nobody else waiting, it may run a second job of its own
    assert runner.run(second) == "completed"


def test_a_page_past_the_page_timeout_fails_the_job_not_the_thread(
    world: World, make_runner: Any
) -> None:
    runner = make_runner(page_timeout_s=0.5)
    job_id = world.queued_job(total=300, page_size=100, delay_s=5)
    started = time.monotonic()
    assert runner.run(job_id) == "failed"
    took = time.monotonic() - started
    job = _job(world.engine, job_id)
    assert took < 3, took  # the thread is back long before the 5 s page would have come
    assert job.error_code == "page_timeout"
    assert job.error == (
        "page_timeout: no page from the connector within 0.5 s (DASHIN_PAGE_TIMEOUT_S)"
    )
    with Session(world.engine) as session:
        events = list(
            session.scalars(
                select(JobLog.event).where(JobLog.job_id == job_id).order_by(JobLog.seq)
            )
        )
    assert events[-2:] == ["job.page_timeout", "job.finish"]
