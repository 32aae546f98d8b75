"""The scheduler's queries over `schedules` and `jobs` (the scheduler's repository, in models/
with all other SQL).

Kept out of the loop so the loop reads as policy. Functions only flush; the caller owns the
transaction (STYLE: the edge commits). Bookkeeping writes (`next_run_at`, `last_fired_at`, skip
counters) send no `NOTIFY schedules`: the scheduler is the only listener, and notifying itself
would turn every fire into a reload.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Exists, SQLColumnExpression, and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from models.job_statuses import LIVE_STATUSES
from models.jobs import Job
from models.schedules import Schedule
from models.schedules_repo import firing_clause


def live_run_clause(schedule_id: uuid.UUID | SQLColumnExpression[uuid.UUID | None]) -> Exists:
    """A run of the schedule that blocks the next one under the skip and queue policies.

    Live = queued, running, pausing, cancelling; plus `paused` for a provider rate limit (the
    reaper resumes it on its own, and a second run would hit the same limit). A job paused by a
    user is not live: a forgotten pause must not silence the schedule for good.
    """
    return exists().where(
        Job.schedule_id == schedule_id,
        or_(
            Job.status.in_(LIVE_STATUSES),
            and_(Job.status == "paused", Job.pause_reason == "rate_limited"),
        ),
    )


def has_live_run(session: Session, schedule_id: uuid.UUID) -> bool:
    return bool(session.scalar(select(live_run_clause(schedule_id))))


def has_waiting_run(session: Session, schedule_id: uuid.UUID) -> bool:
    """A fired run still `pending` because it waits for the previous one (queue policy)."""
    waiting = exists().where(Job.schedule_id == schedule_id, Job.status == "pending")
    return bool(session.scalar(select(waiting)))


def load_schedules(session: Session, ids: Iterable[uuid.UUID] | None = None) -> list[Schedule]:
    """Every schedule that may fire (or the given ones), detached-safe: callers only read plain
    columns. A deleted schedule, or one of a deleted source, is left out: the mirror drops it."""
    query = select(Schedule).where(firing_clause())
    if ids is not None:
        query = query.where(Schedule.id.in_(list(ids)))
    return list(session.scalars(query))


def lock_schedule(session: Session, schedule_id: uuid.UUID) -> Schedule | None:
    """Re-read a schedule under a row lock, so fires of one schedule never interleave."""
    return session.scalar(
        select(Schedule)
        .where(Schedule.id == schedule_id, firing_clause())
        .with_for_update(of=Schedule)
        .execution_options(populate_existing=True)
    )


def set_next_run(session: Session, schedule_id: uuid.UUID, next_run_at: datetime | None) -> None:
    session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id, Schedule.next_run_at.is_distinct_from(next_run_at))
        .values(next_run_at=next_run_at)
    )


def waiting_runs_to_start(session: Session) -> list[uuid.UUID]:
    """The oldest waiting run of each schedule whose previous run is no longer live.

    Deduplicated here rather than with DISTINCT ON (deprecated in SQLAlchemy 2.1 in favour of an
    extension 2.0 lacks): the queue policy keeps at most one waiting run per schedule anyway.
    """
    waiting = aliased(Job, name="waiting")
    rows = session.execute(
        select(waiting.id, waiting.schedule_id)
        .where(
            waiting.status == "pending",
            waiting.schedule_id.is_not(None),
            waiting.slot_time.is_not(None),
            ~live_run_clause(waiting.schedule_id),
        )
        .order_by(waiting.slot_time)
    ).all()
    first: dict[uuid.UUID | None, uuid.UUID] = {}
    for job_id, schedule_id in rows:
        first.setdefault(schedule_id, job_id)
    return list(first.values())
