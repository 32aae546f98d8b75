"""One reading of a schedule's timing, shared by the API, the models and the scheduler.

Before this module the API validated cron with `CronTrigger.from_crontab` (APScheduler 3 reads the
day-of-week field with 0 = Monday) while the scheduler translated crontab days itself (0 = Sunday):
`0 9 * * 1` showed Tuesday in `next_run_at` and fired on Monday, and `0 9 * * 7` was refused. Now
every caller goes through `build_trigger`, which parses the five crontab fields itself and hands
APScheduler only explicit value lists, so APScheduler's own field grammar never decides anything.

Crontab semantics, as `croniter` (the property tests' reference) reads them:
- fields minute, hour, day of month, month (1-12 or `jan`-`dec`), day of week (0-7 or `sun`-`sat`,
  0 and 7 are Sunday, so `sat-sun` is a range); `*`, `a-b`, lists, steps `*/n`, `a-b/n` and `a/n`
  (from a to the maximum); a one-value range `3-3` is that value (croniter reads it as the cycle);
- when both day fields are restricted, a day matching either fires (POSIX); a day field that
  starts with `*` (`*/2`) counts as unrestricted, as in Vixie cron;
- the expression is read in the schedule's IANA time zone. A wall-clock time skipped by a
  spring-forward change fires at the old UTC offset; a repeated one fires once per UTC instant.

An interval schedule counts from `start_at`, or else from one interval after `created_at`, so the
API's `next_run_at` and every scheduler process compute the same grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from cron_descriptor import (
    ExpressionDescriptor,
    FormatException,
    MissingFieldException,
    Options,
    WrongArgumentException,
)

from models.schedules import Schedule

_TICK = timedelta(microseconds=1)
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is the value low + i
    names_from: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES, 1),
    _Field("day_of_week", 0, 7, _DAY_NAMES, 0),
)


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
    def from_values(cls, values: Mapping[str, Any], created_at: datetime) -> TriggerSpec:
        """From a schedule row, or the dict of its columns (a create or a merged PATCH)."""
        return cls(
            cron=values.get("cron"),
            timezone=values.get("timezone") or "UTC",
            interval_seconds=values.get("interval_seconds"),
            start_at=values.get("start_at"),
            end_at=values.get("end_at"),
            created_at=created_at,
        )

    @classmethod
    def from_row(cls, row: Schedule) -> TriggerSpec:
        return cls(
            row.cron,
            row.timezone or "UTC",
            row.interval_seconds,
            row.start_at,
            row.end_at,
            row.created_at,
        )


def parse_field(text: str, field_index: int) -> list[int] | None:
    """The sorted values one crontab field selects; None for `*`. Raises ValueError naming it."""
    spec = _FIELDS[field_index]
    text = text.strip().lower()
    if text == "*":
        return None
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"bad step {step_text!r} in the {spec.name} field {text!r}")
            step = int(step_text)
        if base == "*":
            first, last = spec.low, spec.high
        elif "-" in base:
            low_text, high_text = base.split("-", 1)
            first, last = _value(low_text, spec), _value(high_text, spec)
            if spec.name == "day_of_week" and last == 0:
                last = 7  # `sat-sun`, `5-0`: Sunday closes the week
        else:
            first = _value(base, spec)
            last = spec.high if slash else first
        if first > last:
            raise ValueError(f"bad range {base!r} in the {spec.name} field {text!r}")
        values.update(range(first, last + 1, step))
    if spec.name == "day_of_week":
        values = {day % 7 for day in values}
    return sorted(values)


def _value(text: str, spec: _Field) -> int:
    if text in spec.names:
        return spec.names.index(text) + spec.names_from
    if text.isdigit() and spec.low <= int(text) <= spec.high:
        return int(text)
    raise ValueError(f"{text!r} is not a valid {spec.name.replace('_', ' ')}")


def crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field (0/7 = Sunday) as APScheduler day names."""
    days = parse_field(field, 4)
    return "*" if days is None else ",".join(_DAY_NAMES[day] for day in days)


class CrontabTrigger(BaseTrigger):  # type: ignore[misc]
    """Crontab fields matched on the zone's wall clock, then mapped to instants by explicit rules.

    APScheduler 3.11's `CronTrigger` loses slots when its search crosses a daylight-saving change
    (measured: `0 0 * * mon` in Europe/Berlin, asked one minute before the March change, answered
    the Monday a week later). So the wall-clock arithmetic runs on a `CronTrigger` in UTC, where no
    change exists, and each matching wall-clock time becomes its instants here: a skipped time
    fires at the offset before the change, a repeated time fires once per instant.
    """

    def __init__(
        self, wall: BaseTrigger, zone: ZoneInfo, start: datetime | None, end: datetime | None
    ) -> None:
        self._wall, self._zone, self._start, self._end = wall, zone, start, end

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        now = max(now, self._start) if self._start else now
        local = _wall_of(now, self._zone)
        slot = self._search(now, local, None)
        if slot is not None and _changes_between(self._zone, now - _SHIFT, slot + _SHIFT):
            # near a change, earlier wall-clock times can map to instants after `now`
            slot = self._search(now, local - _SHIFT, _wall_of(slot, self._zone) + _SHIFT)
        if slot is None or (self._end is not None and slot > self._end):
            return None
        return slot.astimezone(self._zone)

    def _search(
        self, now: datetime, wall_from: datetime, wall_until: datetime | None
    ) -> datetime | None:
        """The earliest instant >= `now` named by the wall times from `wall_from` to `wall_until`
        (without an end: by the first wall time that names one)."""
        best: datetime | None = None
        cursor = wall_from
        while (wall := self._wall.get_next_fire_time(None, cursor)) is not None:
            if wall_until is not None and wall > wall_until:
                break
            for instant in _instants(wall.replace(tzinfo=None), self._zone):
                if instant >= now and (best is None or instant < best):
                    best = instant
            if best is not None and wall_until is None:
                break
            cursor = wall + _TICK
        return best


_SHIFT = timedelta(hours=3)  # more than any daylight-saving change moves the clock


def _wall_of(instant: datetime, zone: ZoneInfo) -> datetime:
    """The zone's wall-clock time at `instant`, labelled UTC for the UTC wall-clock trigger."""
    return instant.astimezone(zone).replace(tzinfo=UTC)


def _instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The instants a naive wall-clock time names: one, two (a repeated time) or the old offset."""
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second or second.astimezone(zone).replace(tzinfo=None) != wall:
        return [first]  # an ordinary time, or one skipped by a change (fold 0: the old offset)
    return sorted((first, second))


def _changes_between(zone: ZoneInfo, start: datetime, end: datetime) -> bool:
    offset = start.astimezone(zone).utcoffset()
    probe = start
    while probe < end:
        probe = min(probe + timedelta(hours=12), end)
        if probe.astimezone(zone).utcoffset() != offset:
            return True
    return False


def _cron_trigger(spec: TriggerSpec, zone: ZoneInfo) -> BaseTrigger:
    fields = spec.cron.split() if spec.cron else []
    if len(fields) != 5:
        raise ValueError(f"cron needs 5 fields (minute hour day month weekday), got {len(fields)}")
    parsed = [parse_field(text, index) for index, text in enumerate(fields)]
    minute, hour, day, month = (
        "*" if values is None else ",".join(map(str, values)) for values in parsed[:4]
    )
    weekday = crontab_day_of_week(fields[4])

    def trigger(day: str, weekday: str) -> CronTrigger:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=UTC
        )

    wall: BaseTrigger = trigger(day, weekday)
    if not fields[2].startswith("*") and not fields[4].startswith("*"):
        # POSIX: with both day fields restricted, either one matching is enough
        wall = OrTrigger([trigger(day, "*"), trigger("*", weekday)])
    return CrontabTrigger(wall, zone, spec.start_at, spec.end_at)


def build_trigger(spec: TriggerSpec) -> BaseTrigger:
    """An APScheduler trigger for the spec, without jitter. Raises ValueError on a bad spec."""
    try:
        zone = ZoneInfo(spec.timezone)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"unknown time zone {spec.timezone!r}") from exc
    if spec.cron is not None:
        return _cron_trigger(spec, zone)
    if spec.interval_seconds is None or spec.interval_seconds <= 0:
        raise ValueError("a schedule needs a cron expression or a positive interval")
    interval = timedelta(seconds=spec.interval_seconds)
    return IntervalTrigger(
        seconds=spec.interval_seconds,
        start_date=spec.start_at or spec.created_at + interval,
        end_date=spec.end_at,
        timezone=UTC,
    )


def utc_now() -> datetime:
    """The clock every "next slot" answer is computed from (tests pin it here)."""
    return datetime.now(UTC)


def next_slot_after(trigger: BaseTrigger, after: datetime) -> datetime | None:
    """The first slot strictly after `after` (None once the schedule has ended)."""
    slot = trigger.get_next_fire_time(None, after + _TICK)
    return None if slot is None else slot.astimezone(UTC)


def first_slot(trigger: BaseTrigger, spec: TriggerSpec, cursor: datetime | None) -> datetime | None:
    """The next slot to handle: after the last handled one, or from creation for a new schedule."""
    if cursor is not None:
        return next_slot_after(trigger, cursor)
    return next_slot_after(trigger, spec.created_at - _TICK)


def next_fire_times(trigger: BaseTrigger, after: datetime, count: int) -> list[datetime]:
    """Up to `count` slots strictly after `after`, in UTC."""
    slots: list[datetime] = []
    slot = next_slot_after(trigger, after)
    while slot is not None and len(slots) < count:
        slots.append(slot)
        slot = next_slot_after(trigger, slot)
    return slots


def describe(spec: TriggerSpec) -> str:
    """A sentence for people: "At 09:00, only on Monday (Europe/Berlin)", "Every 15 minutes"."""
    if spec.cron is not None:
        options = Options()
        options.use_24hour_time_format = True
        try:
            text = ExpressionDescriptor(spec.cron, options).get_description()
        except (FormatException, MissingFieldException, WrongArgumentException):
            text = f"cron {spec.cron}"  # a valid expression the describer cannot put in words
        return f"{text} ({spec.timezone})"
    return _describe_interval(spec.interval_seconds or 0)


def _describe_interval(seconds: int) -> str:
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return "Every second" if seconds == 1 else f"Every {seconds} seconds"
