"""The job engine's reaper: put jobs whose worker or message was lost back on a queue.

Three sweeps, one transaction, then the enqueues (a worker must see the committed row):
- `reap_stale`: running/pausing/cancelling without a heartbeat for `heartbeat_timeout_s` →
  queued/paused/cancelled with `lease + 1` (fences out a slow old runner); only `queued` ones
  are enqueued.
- `requeue_lost`: queued longer than `queued_grace_s` (Redis flushed, message dropped) → enqueued
  again. A duplicate message is harmless: only one runner can acquire a job.
- `resume_due`: paused for a provider rate limit whose `resume_at` has come → queued.

The moves are compare-and-set with `SKIP LOCKED` where they scan, so two reapers (the scheduler
leader and a manual `dashin reap`) may overlap safely. Time is the database's `now()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from models import job_states
from models.job_states import Moved
from runtime.db import session_scope
from runtime.logging import get_logger
from runtime.settings import Settings
from workers.enqueue import enqueue_job

Enqueue = Callable[[uuid.UUID, str], None]

log = get_logger("scheduler.reaper")


@dataclass(frozen=True, slots=True)
class ReapReport:
    """Job ids each sweep moved, and which of them were enqueued (or failed to be)."""

    reaped: tuple[uuid.UUID, ...] = ()
    requeued: tuple[uuid.UUID, ...] = ()
    resumed: tuple[uuid.UUID, ...] = ()
    enqueued: tuple[uuid.UUID, ...] = ()
    enqueue_failed: tuple[uuid.UUID, ...] = ()

    @property
    def moved(self) -> int:
        return len(self.reaped) + len(self.requeued) + len(self.resumed)


def reap_once(engine: Engine, settings: Settings, enqueue: Enqueue = enqueue_job) -> ReapReport:
    """Run the three sweeps once, commit, then enqueue every job they left `queued`."""
    with session_scope(engine) as session:
        reaped = job_states.reap_stale(session, settings.heartbeat_timeout_s)
        requeued = job_states.requeue_lost(session, settings.queued_grace_s)
        resumed = job_states.resume_due(session)
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
        resumed=tuple(m.id for m in resumed),
        enqueued=tuple(enqueued),
        enqueue_failed=tuple(failed),
    )
    if report.moved:
        log.info(
            "reaper.swept",
            reaped=len(report.reaped),
            requeued=len(report.requeued),
            resumed=len(report.resumed),
            enqueued=len(enqueued),
        )
    return report
