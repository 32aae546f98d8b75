"""The one way the API and the scheduler put a job on a queue, and how the reaper tells whether
that message is still there.

Call after the transaction that moved the job to `queued` has committed: a worker that picks the
message up must see the row. The message carries only the job id; a lost message is re-sent by
the reaper, a duplicate is harmless (only one runner can acquire a job).

"Lost" must not mean "waiting": when every worker is busy, a job waits in the queue for as long
as it takes, and re-sending it every grace period would grow the queue without bound. So on the
Redis broker each send records which message it was (`dashin:job-message:<job_id>` →
`<queue> <redis message id>`, in the broker's Redis, so a flush loses both together), and
`pending_jobs` asks Redis whether it still exists: Dramatiq keeps a message's body in the hash
`<namespace>:<queue>.msgs` from enqueue until ack (queued or fetched by a worker), and moves a
failed one to the dead-letter queue. A message held in the ack set of a worker whose heartbeat
is older than the broker's `heartbeat_timeout` (a killed worker) counts as lost too: Dramatiq
gives those back only when its random maintenance runs. RabbitMQ cannot be asked about one
message cheaply: `pending_jobs` answers None there and the reaper waits a longer grace.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import cast

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import event
from sqlalchemy.orm import Session

from models.outbox import take_rung
from runtime.broker import get_broker
from runtime.logging import get_logger

ACTOR_NAME = "jobs.run"
#: how long a send is remembered; the reaper renews it while the message waits
MESSAGE_RECORD_TTL_S = 7 * 24 * 3600
_RECORD_PREFIX = "dashin:job-message:"

log = get_logger("workers.enqueue")


def job_message(job_id: uuid.UUID | str, queue: str) -> dramatiq.Message[None]:
    return dramatiq.Message(
        queue_name=queue, actor_name=ACTOR_NAME, args=(str(job_id),), kwargs={}, options={}
    )


def enqueue_job(
    job_id: uuid.UUID | str,
    queue: str,
    broker: dramatiq.Broker | None = None,
    *,
    delay_s: float = 0.0,
) -> None:
    """Send the job's message; `delay_s` for a job held back by fair share (it comes back)."""
    target = broker or get_broker()
    target.declare_queue(queue)
    sent = target.enqueue(job_message(job_id, queue), delay=int(delay_s * 1000) or None)
    if isinstance(target, RedisBroker):
        _remember(target, str(job_id), sent)


def _remember(broker: RedisBroker, job_id: str, sent: dramatiq.Message[None]) -> None:
    """Record the Redis message id just sent (Dramatiq makes a new one per enqueue)."""
    record = f"{sent.queue_name} {sent.options['redis_message_id']}"
    try:
        broker.client.set(_RECORD_PREFIX + job_id, record, ex=MESSAGE_RECORD_TTL_S)
    except redis.RedisError as exc:  # the message is out; at worst the reaper sends one more
        log.warning("enqueue.record_failed", job_id=job_id, error=str(exc))


def tracks_messages(broker: dramatiq.Broker | None = None) -> bool:
    """Can `pending_jobs` tell (Redis), or does the reaper have to guess (RabbitMQ)?"""
    return isinstance(broker or get_broker(), RedisBroker)


def pending_jobs(
    jobs: Sequence[tuple[uuid.UUID, str]], broker: dramatiq.Broker | None = None
) -> set[uuid.UUID] | None:
    """Which of these (job id, queue) still have their last message waiting or being handled.

    None when the broker cannot tell (not Redis). A job without a record (never sent by this
    code, or Redis lost it), whose record names another queue, or whose message is gone or held
    by a dead worker is not pending.
    """
    target = broker or get_broker()
    if not isinstance(target, RedisBroker):
        return None
    if not jobs:
        return set()
    client, ns = target.client, target.namespace
    now_ms = int(time.time() * 1000)
    keys = [_RECORD_PREFIX + str(job_id) for job_id, _ in jobs]
    records = cast(list[bytes | None], client.mget(keys))
    dead_since = now_ms - int(target.heartbeat_timeout)
    heartbeats = cast(list[bytes], client.zrangebyscore(f"{ns}:__heartbeats__", 0, dead_since))
    stale_workers = [_text(w) for w in heartbeats]
    sent: list[tuple[uuid.UUID, str, str]] = []
    for (job_id, queue), record in zip(jobs, records, strict=True):
        if record is None:
            continue
        sent_queue, _, message_id = _text(record).partition(" ")
        if sent_queue.removesuffix(".DQ") == queue and message_id:
            sent.append((job_id, sent_queue, message_id))
    pipe = client.pipeline(transaction=False)
    for _, sent_queue, message_id in sent:
        pipe.hexists(f"{ns}:{sent_queue}.msgs", message_id)
        for worker in stale_workers:
            pipe.sismember(f"{ns}:__acks__.{worker}.{sent_queue}", message_id)
    answers = iter(pipe.execute())
    pending: set[uuid.UUID] = set()
    for job_id, _, _ in sent:
        exists = bool(next(answers))
        held_by_dead = [bool(next(answers)) for _ in stale_workers]
        if exists and not any(held_by_dead):
            pending.add(job_id)
    if pending:
        renew = client.pipeline(transaction=False)
        for job_id in pending:
            renew.expire(_RECORD_PREFIX + str(job_id), MESSAGE_RECORD_TTL_S)
        renew.execute()
    return pending


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# ---- outbox rows (webhook messages, queued mail): `models.outbox` ------------------------------

#: actor and queue per outbox kind; the message carries only the row id, like a job's
OUTBOX_ACTORS: dict[str, tuple[str, str]] = {
    "webhook": ("webhooks.deliver", "webhooks"),
    "mail": ("mail.send", "mail"),
}


def enqueue_outbox(
    kind: str,
    row_id: uuid.UUID | str,
    *,
    delay_s: float = 0.0,
    broker: dramatiq.Broker | None = None,
) -> None:
    """Ring for one outbox row (after the commit that wrote it); `delay_s` for a retry. A lost
    message is harmless: the scheduler's outbox sweep enqueues unclaimed due rows again."""
    actor_name, queue = OUTBOX_ACTORS[kind]
    target = broker or get_broker()
    target.declare_queue(queue)
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=queue, actor_name=actor_name, args=(str(row_id),), kwargs={}, options={}
    )
    target.enqueue(message, delay=int(delay_s * 1000) or None)


def install_doorbell() -> None:
    """Enqueue outbox rows after every commit in this process (idempotent).

    Listens to every SQLAlchemy `Session`: when a transaction that wrote outbox rows
    (`models.outbox.ring`) commits, their ids are enqueued; when it rolls back, they are
    forgotten. The API app and the worker install it; what a lost doorbell leaves behind, the
    scheduler's outbox sweep sends.
    """
    with _doorbell_lock:
        if not event.contains(Session, "after_commit", _after_commit):
            event.listen(Session, "after_commit", _after_commit)
            event.listen(Session, "after_rollback", _after_rollback)


_doorbell_lock = threading.Lock()


def _after_commit(session: Session) -> None:
    for kind, row_id in take_rung(session):
        try:
            enqueue_outbox(kind, row_id)
        except Exception as exc:  # the row is committed: the sweep sends it later
            log.warning("outbox.enqueue_failed", kind=kind, row_id=str(row_id), error=str(exc))


def _after_rollback(session: Session) -> None:
    take_rung(session)
