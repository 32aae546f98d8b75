"""The reaper: stale running jobs, queued jobs whose message was lost, rate-limited pauses."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import cast

import pytest
import redis
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine, func, select, update

from models import Job
from models.job_states import start
from models.jobs_repo import create_job
from runtime.broker import make_broker, set_broker
from runtime.db import session_scope
from runtime.settings import Settings
from scheduler.reaper import BLIND_GRACE_FACTOR, reap_once
from tests.scheduler.conftest import RecordingEnqueue, Source
from workers.enqueue import MESSAGE_RECORD_TTL_S, enqueue_job, pending_jobs


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


# --- a queued job's message: waiting is not lost (the real Dramatiq Redis broker) ------------

QUEUE_KEY = "dramatiq:synthetic"


def _age(engine: Engine, job_id: uuid.UUID, seconds: float = 120) -> None:
    """The job has been queued (or last checked) `seconds` ago: past the 60 s grace."""
    with session_scope(engine) as session:
        session.execute(update(Job).where(Job.id == job_id).values(enqueued_at=_ago(seconds)))


def _messages(client: redis.Redis) -> tuple[int, int]:
    """(message ids queued, message bodies kept until ack) on the synthetic queue."""
    return cast(int, client.llen(QUEUE_KEY)), cast(int, client.hlen(QUEUE_KEY + ".msgs"))


def test_a_waiting_message_is_not_sent_again(
    engine: Engine, source: Source, settings: Settings, redis_broker: redis.Redis
) -> None:
    # Given a queued job whose message waits because every worker is busy
    job = _job(engine, source, status="queued")
    enqueue_job(job, "synthetic")
    # When the reaper passes many times, each time long after the grace
    for _ in range(5):
        _age(engine, job)
        report = reap_once(engine, settings)
        assert (report.requeued, report.waiting, report.enqueued) == ((), (job,), ())
    # Then the queue still holds the one message
    assert _messages(redis_broker) == (1, 1)


@pytest.mark.parametrize("loss", ["flushdb", "message deleted"])
def test_a_lost_message_is_sent_again_once_per_loss(
    engine: Engine, source: Source, settings: Settings, redis_broker: redis.Redis, loss: str
) -> None:
    job = _job(engine, source, status="queued")
    enqueue_job(job, "synthetic")
    for _ in range(2):  # two losses, two re-sends
        if loss == "flushdb":
            redis_broker.flushdb()
        else:
            redis_broker.delete(QUEUE_KEY, QUEUE_KEY + ".msgs")
        assert _messages(redis_broker) == (0, 0)
        _age(engine, job)
        report = reap_once(engine, settings)
        assert (report.requeued, report.enqueued) == ((job,), (job,))
        for _ in range(3):  # the new message is then waiting, not lost
            _age(engine, job)
            assert reap_once(engine, settings).requeued == ()
        assert _messages(redis_broker) == (1, 1)


@pytest.fixture
def worker(redis_url: str) -> Iterator[RedisBroker]:
    """Another process's broker: its `broker_id` is the worker id in Dramatiq's heartbeats."""
    broker = cast(RedisBroker, make_broker(redis_url))
    yield broker
    broker.close()


def _fetched_by(worker: RedisBroker, job: uuid.UUID) -> tuple[Consumer, MessageProxy]:
    consumer = worker.consume("synthetic", prefetch=1, timeout=100)
    fetched = next(iter(consumer))
    assert fetched is not None and fetched.args == (str(job),)
    return consumer, fetched


def test_a_message_held_by_a_dead_worker_is_sent_again(
    engine: Engine,
    source: Source,
    settings: Settings,
    redis_broker: redis.Redis,
    worker: RedisBroker,
) -> None:
    # Given a worker that fetched the job's message (prefetch) and has not acked it
    job = _job(engine, source, status="queued")
    enqueue_job(job, "synthetic")
    _fetched_by(worker, job)
    assert _messages(redis_broker) == (0, 1)
    # While that worker is alive, the message is in flight: nothing is sent
    _age(engine, job)
    assert reap_once(engine, settings).waiting == (job,)
    # When its heartbeat is older than the broker's heartbeat timeout (killed), it is lost
    dead_at = int(time.time() * 1000) - worker.heartbeat_timeout - 1000
    redis_broker.zadd("dramatiq:__heartbeats__", {worker.broker_id: dead_at})
    _age(engine, job)
    report = reap_once(engine, settings)
    assert (report.requeued, report.enqueued) == ((job,), (job,))
    assert _messages(redis_broker) == (1, 2)  # the new one queued, the dead worker's kept


def test_a_dead_lettered_message_is_sent_again(
    engine: Engine,
    source: Source,
    settings: Settings,
    redis_broker: redis.Redis,
    worker: RedisBroker,
) -> None:
    job = _job(engine, source, status="queued")
    enqueue_job(job, "synthetic")
    consumer, fetched = _fetched_by(worker, job)
    consumer.nack(fetched)  # the actor failed before acquiring: Dramatiq dead-letters it
    _age(engine, job)
    assert reap_once(engine, settings).requeued == (job,)
    assert _messages(redis_broker) == (1, 1)


def test_a_broker_that_cannot_tell_waits_a_longer_grace(
    engine: Engine, source: Source, settings: Settings
) -> None:
    # Given a broker the reaper cannot ask about one message (RabbitMQ; a stub here)
    stub = StubBroker()
    set_broker(stub)
    try:
        job = _job(engine, source, status="queued")
        _age(engine, job, 120)  # twice the grace: maybe just waiting
        assert reap_once(engine, settings).requeued == ()
        _age(engine, job, settings.queued_grace_s * BLIND_GRACE_FACTOR + 60)
        assert reap_once(engine, settings).requeued == (job,)
        assert stub.queues["synthetic"].qsize() == 1
    finally:
        set_broker(None)


def test_the_send_is_remembered_next_to_the_message(
    engine: Engine, source: Source, redis_broker: redis.Redis
) -> None:
    job = _job(engine, source, status="queued")
    enqueue_job(job, "synthetic")
    record = cast(bytes, redis_broker.get(f"dashin:job-message:{job}"))
    queue, _, message_id = record.decode().partition(" ")
    assert queue == "synthetic"
    assert redis_broker.hexists(QUEUE_KEY + ".msgs", message_id)
    assert 0 < cast(int, redis_broker.ttl(f"dashin:job-message:{job}")) <= MESSAGE_RECORD_TTL_S
    assert pending_jobs([(job, "synthetic")]) == {job}
    assert pending_jobs([(job, "linkedin")]) == set()  # sent to another queue: not there
