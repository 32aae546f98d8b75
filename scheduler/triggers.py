"""Slot arithmetic: which un-jittered instants a schedule fires at, using APScheduler 3.11 triggers.

APScheduler owns the calendar maths (cron fields, time zones, DST); this module only asks its
triggers "what is the first fire time after X?" and never lets them add jitter (3.11 adds jitter
inside `get_next_fire_time`, which would move the slot itself — NOTES.md). Jitter is applied by the
loop to the enqueue only.

Semantics worth knowing, all APScheduler's own:
- Cron runs in the schedule's IANA time zone. A wall-clock time skipped by a spring-forward change
  (02:30 in Europe/Berlin on the last Sunday of March) fires at the same UTC offset as before the
  change (02:30+01:00 = 01:30 UTC); a time repeated by a fall-back change fires twice, once per
  UTC instant (00:30 and 01:30 UTC).
- The day-of-week field follows standard crontab (0 or 7 = Sunday), not APScheduler 3's
  "0 = Monday": numeric days are translated to names before the trigger sees them.
- An interval schedule counts from `start_at`, or else from one interval after `created_at`
  (APScheduler's "first run after one interval"), so every process computes the same grid.
- Slots have whole-second resolution; every instant returned here is timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from models.schedules import Schedule

_TICK = timedelta(microseconds=1)
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """The columns of a schedule that decide its slots; equal specs give equal slots."""

    cron: str | None
    timezone: str
    interval_seconds: int | None
    start_at: datetime | None
    end_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Schedule) -> TriggerSpec:
        return cls(
            cron=row.cron,
            timezone=row.timezone or "UTC",
            interval_seconds=row.interval_seconds,
            start_at=row.start_at,
            end_at=row.end_at,
            created_at=row.created_at,
        )


@dataclass(frozen=True, slots=True)
class DueSlots:
    """What a tick should do with a schedule whose next slot has come."""

    fire: datetime | None  # the latest due slot within the misfire grace, or None
    coalesced: int  # other due slots within the grace, folded into `fire`
    missed: bool  # some due slots were older than the grace and were dropped
    next_slot: datetime | None  # the first slot after `now` (None: the schedule has ended)


def build_trigger(spec: TriggerSpec) -> BaseTrigger:
    """An APScheduler trigger for the spec, without jitter. Raises ValueError on a bad spec."""
    if spec.cron is not None:
        fields = spec.cron.split()
        if len(fields) != 5:
            raise ValueError(f"cron needs 5 fields, got {len(fields)}: {spec.cron!r}")
        minute, hour, day, month, day_of_week = fields
        try:
            zone = ZoneInfo(spec.timezone)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unknown time zone {spec.timezone!r}") from exc
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_day_of_week(day_of_week),
            start_date=spec.start_at,
            end_date=spec.end_at,
            timezone=zone,
        )
    if spec.interval_seconds is None or spec.interval_seconds <= 0:
        raise ValueError("a schedule needs a cron expression or a positive interval")
    interval = timedelta(seconds=spec.interval_seconds)
    return IntervalTrigger(
        seconds=spec.interval_seconds,
        start_date=spec.start_at or spec.created_at + interval,
        end_date=spec.end_at,
        timezone=UTC,
    )


def next_slot_after(trigger: BaseTrigger, after: datetime) -> datetime | None:
    """The first slot strictly after `after` (None once the schedule has ended)."""
    slot = trigger.get_next_fire_time(None, after + _TICK)
    return None if slot is None else slot.astimezone(UTC)


def first_slot(trigger: BaseTrigger, spec: TriggerSpec, cursor: datetime | None) -> datetime | None:
    """The next slot to handle: after the last handled one, or from creation for a new schedule."""
    if cursor is not None:
        return next_slot_after(trigger, cursor)
    return next_slot_after(trigger, spec.created_at - _TICK)


def due_slots(trigger: BaseTrigger, first_due: datetime, now: datetime, grace_s: float) -> DueSlots:
    """Coalesce the slots in [first_due, now]: fire only the latest one within the grace.

    Iteration starts at the grace horizon, so a week of downtime costs no more than a minute.
    """
    horizon = now - timedelta(seconds=grace_s)
    missed = first_due < horizon
    slot: datetime | None = next_slot_after(trigger, horizon - _TICK) if missed else first_due
    fire: datetime | None = None
    count = 0
    while slot is not None and slot <= now:
        fire = slot
        count += 1
        slot = next_slot_after(trigger, slot)
    return DueSlots(fire=fire, coalesced=max(count - 1, 0), missed=missed, next_slot=slot)


def crontab_day_of_week(field: str) -> str:
    """Translate a crontab day-of-week field (0/7 = Sunday) into APScheduler day names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step <= 0:
            raise ValueError(f"bad day-of-week step in {field!r}")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-", 1)
            first, last = _day_number(low), _day_number(high)
            if last == 0 and high.strip() == "7":
                last = 7
        else:
            first = _day_number(base)
            last = 6 if step_text else first
        if first > last:
            raise ValueError(f"bad day-of-week range in {field!r}")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def _day_number(text: str) -> int:
    text = text.strip()
    if text in _DAY_NAMES:
        return _DAY_NAMES.index(text)
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    raise ValueError(f"bad day of week {text!r}")
