"""Webhook delivery end to end: a `python -m workers` process runs jobs and delivers their
events to local receivers, through the real broker (Redis) and the outbox in PostgreSQL.

The receivers verify every signature with the `standardwebhooks` package, as an integrator
would. Retries are driven by a small backoff base (`DASHIN_WEBHOOK_RETRY_BASE_S=0.2`), and
every wait is for a condition with a deadline.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from models import job_states, webhooks_repo
from models.webhooks import WebhookDelivery, WebhookMessage
from runtime.broker import make_broker, set_broker
from runtime.settings import get_settings
from scheduler.outbox_sweep import sweep_outbox
from tests.cli.conftest import Proc, live_env
from tests.receivers import WebhookReceiver, free_port
from tests.workers.conftest import World
from workers.enqueue import enqueue_job, install_doorbell

pytestmark = pytest.mark.slow
__all__ = ["live_env"]  # a fixture, used by `worker_env`


@pytest.fixture
def worker_env(
    live_env: dict[str, str], redis_url: str, settings_env: None
) -> Iterator[dict[str, str]]:
    """The CLI suite's subprocess environment, with a small webhook backoff base."""
    set_broker(make_broker(redis_url))  # this process enqueues where the worker listens
    install_doorbell()
    assert live_env["DASHIN_SECRET_KEY"] == get_settings().require_secret_key()
    yield {
        **live_env,
        "DASHIN_WEBHOOK_RETRY_BASE_S": "0.2",
        "DASHIN_WEBHOOK_RETRY_MAX_DELAY_S": "1",
    }
    set_broker(None)


@pytest.fixture
def worker(worker_env: dict[str, str]) -> Iterator[Proc]:
    argv = [sys.executable, "-m", "workers", "--queues", "synthetic,webhooks", "--threads", "2"]
    proc = Proc(argv, worker_env)
    try:
        proc.wait_for("worker.ready")
        yield proc
    finally:
        proc.stop()


def add_webhook(engine: Engine, world: World, url: str, events: list[str]) -> tuple[uuid.UUID, str]:
    with Session(engine) as session, session.begin():
        created = webhooks_repo.create_webhook(
            session,
            domain_id=world.domain_id,
            url=url,
            events=events,
            description=None,
            enabled=True,
            created_by=world.user_id,
            secret_key=get_settings().require_secret_key(),
        )
        return created.webhook.id, created.secret


def _statuses(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.scalars(select(WebhookMessage.status)))


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling the database: no event to await across processes


def attempts_by_message(engine: Engine) -> dict[uuid.UUID, list[bool]]:
    with Session(engine) as session:
        rows = session.execute(
            select(WebhookDelivery.message_id, WebhookDelivery.succeeded).order_by(
                WebhookDelivery.attempt
            )
        ).all()
    found: dict[uuid.UUID, list[bool]] = {}
    for message_id, succeeded in rows:
        found.setdefault(message_id, []).append(succeeded)
    return found


def test_job_completed_reaches_the_receiver_and_verifies(
    world: World, engine: Engine, worker: Proc
) -> None:
    # Given an endpoint for job.completed behind a receiver that verifies signatures
    receiver = WebhookReceiver()
    try:
        _, secret = add_webhook(engine, world, receiver.url, ["job.completed", "job.failed"])
        receiver.secret = secret
        # When a job runs to the end on the worker
        job_id = world.queued_job(total=250, page_size=50)
        enqueue_job(job_id, "synthetic")
        receiver.wait_for(lambda: len(receiver.verified) == 1, 60, "job.completed")
    finally:
        receiver.close()
    # Then the receiver verified one job.completed carrying the finished job
    (payload,) = receiver.verified.values()
    assert receiver.failures == []
    assert payload["type"] == "job.completed"
    data = payload["data"]
    assert data["id"] == str(job_id) and data["status"] == "completed"
    assert data["counters"]["fetched"] == 250 and data["finished_at"] is not None
    (request,) = receiver.requests
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"


def test_a_receiver_down_for_a_while_gets_every_event_once_back(
    world: World, engine: Engine, worker: Proc, redis_url: str
) -> None:
    # Given an endpoint whose receiver is not listening yet (connections are refused)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    _, secret = add_webhook(engine, world, url, ["job.cancelled", "job.paused"])
    # When six jobs are cancelled or paused while it is down
    jobs = [world.queued_job(total=10) for _ in range(6)]
    with Session(engine) as session, session.begin():
        for i, job_id in enumerate(jobs):
            (job_states.cancel if i % 2 else job_states.pause)(session, job_id)
    # every message fails at least twice (refused), then the receiver comes up answering 503
    wait_until(
        lambda: (
            len(attempts_by_message(engine)) == 6
            and all(len(a) >= 2 for a in attempts_by_message(engine).values())
        ),
        60,
        "two refused attempts per message",
    )
    receiver = WebhookReceiver(secret=secret, port=port)
    try:
        receiver.answer = 503
        receiver.wait_for(lambda: len(receiver.requests) >= 3, 30, "attempts answered 503")
        # and one of the retry messages is lost on the way (Redis flushed)
        redis.Redis.from_url(redis_url).flushdb()
        receiver.answer = 200
        stop = threading.Event()
        tuned = get_settings().model_copy(update={"queued_grace_s": 1.0})

        def sweep() -> None:  # the scheduler's outbox sweep, as the leader runs it
            while not stop.wait(0.3):
                sweep_outbox(engine, tuned)

        sweeper = threading.Thread(target=sweep, daemon=True)
        sweeper.start()
        try:
            receiver.wait_for(lambda: len(receiver.verified) == 6, 90, "all six events")
            # (the worker records an attempt after the receiver has answered it)
            wait_until(lambda: _statuses(engine) == {"done"}, 60, "six messages settled")
        finally:
            stop.set()
            sweeper.join(5)
    finally:
        receiver.close()
    # Then every event arrived, each verified, deduplicated by webhook-id
    assert receiver.failures == []
    types = sorted(p["type"] for p in receiver.verified.values())
    assert types == ["job.cancelled"] * 3 + ["job.paused"] * 3
    assert {p["data"]["id"] for p in receiver.verified.values()} == {str(j) for j in jobs}
    # after failed attempts kept with their errors, and each message delivered
    attempts = attempts_by_message(engine)
    assert all(a[-1] and not any(a[:-1]) and len(a) >= 3 for a in attempts.values())
    with Session(engine) as session:
        statuses = session.scalars(select(WebhookMessage.status)).all()
        failed_with_errors = session.scalar(
            select(func.count()).where(
                WebhookDelivery.succeeded.is_(False), WebhookDelivery.error.is_not(None)
            )
        )
    assert set(statuses) == {"done"} and failed_with_errors and failed_with_errors >= 6 * 2 + 3
