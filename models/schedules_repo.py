"""Schedule queries, scoped to one domain, and the un-jittered next fire time.

Every create, change or delete sends `NOTIFY schedules, '<id>'` in the same transaction, so the
scheduler's mirror of the table is told exactly when the change becomes visible (on commit) and
never acts on a rolled-back edit. `next_run_at` is computed here without jitter: it is the slot
the scheduler will fire, and jitter only delays the enqueue (NOTES.md, APScheduler).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Select, delete, insert, select
from sqlalchemy.orm import Session

from models.notify import pg_notify
from models.schedules import Schedule
from runtime.errors import NotFound

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


def build_trigger(
    *,
    cron: str | None,
    timezone: str,
    interval_seconds: int | None,
    start_at: datetime | None,
    end_at: datetime | None,
) -> BaseTrigger:
    """The APScheduler trigger for a schedule (raises ValueError/KeyError on bad input)."""
    tz = ZoneInfo(timezone)
    if cron is not None:
        trigger = CronTrigger.from_crontab(cron, timezone=tz)
        # from_crontab takes no bounds; the trigger reads these attributes on every call
        trigger.start_date = start_at.astimezone(tz) if start_at else None
        trigger.end_date = end_at.astimezone(tz) if end_at else None
        return trigger
    if interval_seconds is None:
        raise ValueError("a schedule needs cron or interval_seconds")
    return IntervalTrigger(
        seconds=interval_seconds, start_date=start_at, end_date=end_at, timezone=tz
    )


def next_run_at(values: dict[str, Any], now: datetime | None = None) -> datetime | None:
    """The next un-jittered slot after `now`, or None when disabled or past `end_at`."""
    if not values.get("enabled", True):
        return None
    now = now or datetime.now(UTC)
    trigger = build_trigger(
        cron=values.get("cron"),
        timezone=values.get("timezone") or "UTC",
        interval_seconds=values.get("interval_seconds"),
        start_at=values.get("start_at"),
        end_at=values.get("end_at"),
    )
    fire: datetime | None = trigger.get_next_fire_time(None, now)
    return fire


def create_schedule(
    session: Session, *, domain_id: uuid.UUID, created_by: uuid.UUID | None, values: dict[str, Any]
) -> Schedule:
    row = {k: v for k, v in values.items() if k in WRITABLE}
    row["next_run_at"] = next_run_at(row)
    schedule_id = session.execute(
        insert(Schedule)
        .values(domain_id=domain_id, created_by=created_by, **row)
        .returning(Schedule.id)
    ).scalar_one()
    pg_notify(session, "schedules", str(schedule_id))
    return get_schedule(session, schedule_id, domain_id)


def get_schedule(session: Session, schedule_id: uuid.UUID, domain_id: uuid.UUID) -> Schedule:
    schedule = session.scalar(
        select(Schedule).where(Schedule.id == schedule_id, Schedule.domain_id == domain_id)
    )
    if schedule is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return schedule


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
    schedule.next_run_at = next_run_at(schedule_values(schedule))
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
