"""The job engine's reaper: put jobs whose worker or message was lost back on a queue.

Three sweeps, one transaction, then the enqueues (a worker must see the committed row):
- `reap_stale`: running/pausing/cancelling without a heartbeat for `heartbeat_timeout_s` →
  queued/paused/cancelled with `lease + 1` (fences out a slow old runner); only `queued` ones
  are enqueued.
- `requeue_lost`: queued longer than `queued_grace_s` whose message is gone (Redis flushed, a
  dead worker's prefetch, a dead-lettered message) → enqueued again. A job that is only waiting
  for a free worker keeps its one message: `workers.enqueue.pending_jobs` asks the broker, and
  the job's `enqueued_at` restarts either way, so each job is checked once per grace period.
  A broker that cannot be asked (RabbitMQ) gets the job re-sent only after
  `BLIND_GRACE_FACTOR` times the grace. A duplicate message is harmless (only one runner can acquire
  a job), but an endless stream of them would fill the queue.
- `resume_due`: paused for a provider rate limit whose `resume_at` has come → queued.

The moves are compare-and-set with `SKIP LOCKED` where they scan, so two reapers (the scheduler
leader and a manual `dashin reap`) may overlap safely. Time is the database's `now()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from models import job_states
from models.job_states import Moved
from runtime.db import session_scope
from runtime.logging import get_logger
from runtime.settings import Settings
from workers.enqueue import enqueue_job, pending_jobs, tracks_messages

Enqueue = Callable[[uuid.UUID, str], None]
#: which of these (job id, queue) still have a message on the broker; None: cannot tell
Pending = Callable[[Sequence[tuple[uuid.UUID, str]]], set[uuid.UUID] | None]

#: without a way to ask the broker, a queued job is assumed lost only after this many graces
BLIND_GRACE_FACTOR = 10

log = get_logger("scheduler.reaper")


@dataclass(frozen=True, slots=True)
class ReapReport:
    """Job ids each sweep moved, and which of them were enqueued (or failed to be).

    `requeued` are queued jobs whose message was lost and sent again; `waiting` those past the
    grace whose message is still on the broker (not sent again).
    """

    reaped: tuple[uuid.UUID, ...] = ()
    requeued: tuple[uuid.UUID, ...] = ()
    waiting: tuple[uuid.UUID, ...] = ()
    resumed: tuple[uuid.UUID, ...] = ()
    enqueued: tuple[uuid.UUID, ...] = ()
    enqueue_failed: tuple[uuid.UUID, ...] = ()

    @property
    def moved(self) -> int:
        return len(self.reaped) + len(self.requeued) + len(self.resumed)


def reap_once(
    engine: Engine,
    settings: Settings,
    enqueue: Enqueue = enqueue_job,
    pending: Pending | None = None,
) -> ReapReport:
    """Run the three sweeps once, commit, then enqueue every job they left `queued` (for
    `requeue_lost`: only those whose message is gone).

    `pending` asks the broker which messages still exist; by default `pending_jobs` when
    `enqueue` is the default one (it must look where `enqueue` sends). A custom `enqueue`
    without `pending` re-sends every job past the plain grace.
    """
    grace = settings.queued_grace_s
    if pending is None and enqueue is enqueue_job:
        pending = pending_jobs
        if not tracks_messages():
            grace *= BLIND_GRACE_FACTOR
    with session_scope(engine) as session:
        reaped = job_states.reap_stale(session, settings.heartbeat_timeout_s)
        overdue = job_states.requeue_lost(session, grace)
        resumed = job_states.resume_due(session)
    requeued, waiting = _lost(overdue, pending)
    to_enqueue: list[Moved] = [m for m in (*reaped, *requeued, *resumed) if m.status == "queued"]
    enqueued: list[uuid.UUID] = []
    failed: list[uuid.UUID] = []
    for moved in to_enqueue:
        try:
            enqueue(moved.id, moved.queue)
        except Exception as exc:  # the broker is a doorbell: the next sweep rings again
            log.error("reaper.enqueue_failed", job_id=str(moved.id), error=str(exc))
            failed.append(moved.id)
        else:
            enqueued.append(moved.id)
    report = ReapReport(
        reaped=tuple(m.id for m in reaped),
        requeued=tuple(m.id for m in requeued),
        waiting=tuple(waiting),
        resumed=tuple(m.id for m in resumed),
        enqueued=tuple(enqueued),
        enqueue_failed=tuple(failed),
    )
    if report.moved or report.waiting:
        log.info(
            "reaper.swept",
            reaped=len(report.reaped),
            requeued=len(report.requeued),
            waiting=len(report.waiting),
            resumed=len(report.resumed),
            enqueued=len(enqueued),
        )
    return report


def _lost(overdue: list[Moved], pending: Pending | None) -> tuple[list[Moved], list[uuid.UUID]]:
    """Split overdue queued jobs into (message lost: send again, message still there)."""
    if pending is None or not overdue:
        return overdue, []
    try:
        there = pending([(m.id, m.queue) for m in overdue])
    except Exception as exc:  # cannot ask: sending again is the safe side (duplicates are fenced)
        log.error("reaper.pending_check_failed", error=str(exc))
        there = None
    if there is None:
        return overdue, []
    return [m for m in overdue if m.id not in there], [m.id for m in overdue if m.id in there]
