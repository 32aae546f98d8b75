"""The reaper: stale running jobs, queued jobs whose message was lost, rate-limited pauses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import cast

import pytest
import redis
from sqlalchemy import Engine, func, select, update

from models import Job
from models.job_states import start
from models.jobs_repo import create_job
from runtime.broker import make_broker, set_broker
from runtime.db import session_scope
from runtime.settings import Settings
from scheduler.reaper import reap_once
from tests.scheduler.conftest import RecordingEnqueue, Source


@pytest.fixture
def settings() -> Settings:
    return Settings(heartbeat_timeout_s=15, queued_grace_s=60, reap_interval_s=3)


def _job(engine: Engine, source: Source, **values: object) -> uuid.UUID:
    """A job created and started, then forced into the given columns (SQL expressions allowed)."""
    with session_scope(engine) as session:
        job = create_job(session, domain_id=source.domain_id, data_source_id=source.data_source_id)
        assert job is not None
        start(session, job.id)
        session.execute(update(Job).where(Job.id == job.id).values(**values))
        return job.id


def _row(engine: Engine, job_id: uuid.UUID) -> Job:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _ago(seconds: float) -> object:
    return func.now() - timedelta(seconds=seconds)


def test_stale_running_job_is_requeued_with_a_new_lease_and_enqueued(
    engine: Engine, source: Source, settings: Settings, recorder: RecordingEnqueue
) -> None:
    stale = _job(engine, source, status="running", lease=3, heartbeat_at=_ago(60))
    alive = _job(engine, source, status="running", lease=3, heartbeat_at=_ago(1))
    report = reap_once(engine, settings, enqueue=recorder)
    assert report.reaped == (stale,)
    job = _row(engine, stale)
    assert (job.status, job.lease) == ("queued", 4)
    assert _row(engine, alive).status == "running"
    assert recorder.calls == [(stale, "synthetic")]


def test_stale_pausing_job_is_parked_not_enqueued(
    engine: Engine, source: Source, settings: Settings, recorder: RecordingEnqueue
) -> None:
    pausing = _job(engine, source, status="pausing", heartbeat_at=_ago(60))
    report = reap_once(engine, settings, enqueue=recorder)
    assert report.reaped == (pausing,)
    assert _row(engine, pausing).status == "paused"
    assert recorder.calls == []


def test_queued_job_older_than_the_grace_is_enqueued_again(
    engine: Engine, source: Source, settings: Settings, recorder: RecordingEnqueue
) -> None:
    lost = _job(engine, source, enqueued_at=_ago(120))
    fresh = _job(engine, source, enqueued_at=_ago(5))
    report = reap_once(engine, settings, enqueue=recorder)
    assert report.requeued == (lost,)
    assert recorder.job_ids == [lost]
    # and its clock restarts, so the next pass does not enqueue it again
    assert reap_once(engine, settings, enqueue=recorder).requeued == ()
    assert _row(engine, fresh).status == "queued"


def test_rate_limited_job_resumes_at_resume_at(
    engine: Engine, source: Source, settings: Settings, recorder: RecordingEnqueue
) -> None:
    due = _job(engine, source, status="paused", pause_reason="rate_limited", resume_at=_ago(1))
    later = _job(
        engine, source, status="paused", pause_reason="rate_limited", resume_at=_ago(-3600)
    )
    by_user = _job(engine, source, status="paused", pause_reason="user", resume_at=_ago(1))
    report = reap_once(engine, settings, enqueue=recorder)
    assert report.resumed == (due,)
    assert recorder.job_ids == [due]
    assert [_row(engine, j).status for j in (due, later, by_user)] == ["queued", "paused", "paused"]


def test_failed_enqueue_is_reported_and_left_for_the_next_pass(
    engine: Engine, source: Source, settings: Settings
) -> None:
    lost = _job(engine, source, enqueued_at=_ago(120))

    def broken(job_id: uuid.UUID, queue: str) -> None:
        raise ConnectionError("redis down")

    report = reap_once(engine, settings, enqueue=broken)
    assert (report.requeued, report.enqueued, report.enqueue_failed) == ((lost,), (), (lost,))


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[redis.Redis]:
    set_broker(make_broker(redis_url))
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
    set_broker(None)


def test_reaper_enqueues_on_the_real_broker(
    engine: Engine, source: Source, settings: Settings, redis_broker: redis.Redis
) -> None:
    stale = _job(engine, source, status="running", heartbeat_at=_ago(60))
    reap_once(engine, settings)  # default enqueue: workers.enqueue.enqueue_job
    queued = cast(list[bytes], redis_broker.lrange("dramatiq:synthetic", 0, -1))
    messages = cast(list[bytes], redis_broker.hvals("dramatiq:synthetic.msgs"))
    assert len(queued) == 1
    assert str(stale).encode() in messages[0]
    with session_scope(engine) as session:
        assert session.scalar(select(Job.status).where(Job.id == stale)) == "queued"
