"""Schedule queries, scoped to one domain, and the un-jittered next fire time.

Every create, change or delete sends `NOTIFY schedules, '<id>'` in the same transaction, so the
scheduler's mirror of the table is told exactly when the change becomes visible (on commit) and
never acts on a rolled-back edit. `next_run_at` is computed here without jitter: it is the slot
the scheduler will fire, and jitter only delays the enqueue (NOTES.md, APScheduler).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.orm import Session

from models.base import found
from models.notify import pg_notify
from models.schedule_timing import TriggerSpec, build_trigger, next_slot_after, utc_now
from models.schedules import Schedule

#: columns a caller may set; everything else is maintained by the scheduler
WRITABLE = (
    "name",
    "data_source_id",
    "campaign_id",
    "cron",
    "timezone",
    "interval_seconds",
    "start_at",
    "end_at",
    "jitter_seconds",
    "overlap",
    "enabled",
    "params",
)


def next_run_at(
    values: dict[str, Any], created_at: datetime, now: datetime | None = None
) -> datetime | None:
    """The next un-jittered slot after `now`, or None when disabled or past `end_at`."""
    if not values.get("enabled", True):
        return None
    trigger = build_trigger(TriggerSpec.from_values(values, created_at))
    return next_slot_after(trigger, now or utc_now())


def create_schedule(
    session: Session, *, domain_id: uuid.UUID, created_by: uuid.UUID | None, values: dict[str, Any]
) -> Schedule:
    row = {k: v for k, v in values.items() if k in WRITABLE}
    # created_at is set here, not by the server, because an interval's grid starts from it
    created = utc_now()
    row["next_run_at"] = next_run_at(row, created, created)
    schedule_id = session.execute(
        insert(Schedule)
        .values(domain_id=domain_id, created_by=created_by, created_at=created, **row)
        .returning(Schedule.id)
    ).scalar_one()
    pg_notify(session, "schedules", str(schedule_id))
    return get_schedule(session, schedule_id, domain_id)


def get_schedule(session: Session, schedule_id: uuid.UUID, domain_id: uuid.UUID) -> Schedule:
    return found(
        session.scalar(
            select(Schedule).where(Schedule.id == schedule_id, Schedule.domain_id == domain_id)
        ),
        "schedule",
        schedule_id,
    )


def list_schedules_query(
    domain_id: uuid.UUID, *, data_source_id: uuid.UUID | None = None
) -> Select[Schedule]:
    query = select(Schedule).where(Schedule.domain_id == domain_id)
    if data_source_id is not None:
        query = query.where(Schedule.data_source_id == data_source_id)
    return query


def schedule_values(schedule: Schedule) -> dict[str, Any]:
    """The writable columns as a dict, to merge a PATCH into before validating the whole."""
    return {name: getattr(schedule, name) for name in WRITABLE}


def update_schedule(session: Session, schedule: Schedule, values: dict[str, Any]) -> Schedule:
    for name, value in values.items():
        if name in WRITABLE:
            setattr(schedule, name, value)
    schedule.next_run_at = next_run_at(schedule_values(schedule), schedule.created_at)
    session.flush()
    pg_notify(session, "schedules", str(schedule.id))
    session.refresh(schedule)
    return schedule


def delete_schedule(session: Session, schedule_id: uuid.UUID, domain_id: uuid.UUID) -> None:
    get_schedule(session, schedule_id, domain_id)
    session.execute(
        delete(Schedule).where(Schedule.id == schedule_id, Schedule.domain_id == domain_id)
    )
    pg_notify(session, "schedules", str(schedule_id))
