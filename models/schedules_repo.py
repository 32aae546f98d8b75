"""Schedule queries, scoped to one domain, and the un-jittered next fire time.

Every create, change or delete sends `NOTIFY schedules, '<id>'` in the same transaction, so the
scheduler's mirror of the table is told exactly when the change becomes visible (on commit) and
never acts on a rolled-back edit. `next_run_at` is computed here without jitter: it is the slot
the scheduler will fire, and jitter only delays the enqueue (NOTES.md, APScheduler).

Delete is soft (`deleted_at`, undone by `restore_schedule`): a deleted schedule, or one whose
data source is deleted, is left out of what the scheduler loads and locks (`firing_clause`), so
it stops firing from the commit on; its past jobs keep their `schedule_id`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, insert, select, update
from sqlalchemy.orm import Session

from models.base import found
from models.notify import pg_notify
from models.schedule_timing import TriggerSpec, build_trigger, next_slot_after, utc_now
from models.schedules import Schedule
from models.sources import DataSource

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


def firing_clause() -> ColumnElement[bool]:
    """Schedules the scheduler may fire: not deleted, and neither is their data source."""
    return and_(
        Schedule.deleted_at.is_(None),
        exists().where(DataSource.id == Schedule.data_source_id, DataSource.deleted_at.is_(None)),
    )


def get_schedule(
    session: Session, schedule_id: uuid.UUID, domain_id: uuid.UUID, *, include_deleted: bool = False
) -> Schedule:
    """The domain's schedule; a deleted one is not found unless `include_deleted`."""
    query = select(Schedule).where(Schedule.id == schedule_id, Schedule.domain_id == domain_id)
    if not include_deleted:
        query = query.where(Schedule.deleted_at.is_(None))
    return found(session.scalar(query), "schedule", schedule_id)


def list_schedules_query(
    domain_id: uuid.UUID, *, data_source_id: uuid.UUID | None = None, include_deleted: bool = False
) -> Select[Schedule]:
    query = select(Schedule).where(Schedule.domain_id == domain_id)
    if not include_deleted:
        query = query.where(Schedule.deleted_at.is_(None))
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
    """Soft-delete: the scheduler drops it on the NOTIFY (and skips it if it fires meanwhile)."""
    get_schedule(session, schedule_id, domain_id)
    session.execute(
        update(Schedule).where(Schedule.id == schedule_id).values(deleted_at=func.now())
    )
    pg_notify(session, "schedules", str(schedule_id))


def restore_schedule(session: Session, schedule_id: uuid.UUID, domain_id: uuid.UUID) -> Schedule:
    """Undo `delete_schedule`. Slots missed while deleted are not fired after the fact: the
    next run is computed from now."""
    schedule = get_schedule(session, schedule_id, domain_id, include_deleted=True)
    if schedule.deleted_at is not None:
        schedule.deleted_at = None
        schedule.next_run_at = next_run_at(schedule_values(schedule), schedule.created_at)
        session.flush()
        pg_notify(session, "schedules", str(schedule_id))
    session.refresh(schedule)
    return schedule
