"""Slot arithmetic over APScheduler triggers: DST, crontab weekdays, interval grid, coalescing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.schedule_timing import crontab_day_of_week
from scheduler.triggers import (
    TriggerSpec,
    build_trigger,
    due_slots,
    first_slot,
    next_slot_after,
)


def _slots(spec: TriggerSpec, count: int) -> list[datetime]:
    trigger = build_trigger(spec)
    slot = first_slot(trigger, spec, None)
    out: list[datetime] = []
    while slot is not None and len(out) < count:
        out.append(slot)
        slot = next_slot_after(trigger, slot)
    return out


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _cron(expr: str, tz: str, created: datetime, **kw: datetime | None) -> TriggerSpec:
    return TriggerSpec(expr, tz, None, kw.get("start_at"), kw.get("end_at"), created)


def test_berlin_spring_forward_fires_the_skipped_time_at_the_old_offset() -> None:
    # Given 02:30 Berlin time daily; on 2025-03-30 clocks jump from 02:00 to 03:00 CET→CEST
    spec = _cron("30 2 * * *", "Europe/Berlin", _utc(2025, 3, 28))
    # Then APScheduler fires at 02:30+01:00 on the change day (01:30 UTC), then 00:30 UTC (CEST)
    assert _slots(spec, 4) == [
        _utc(2025, 3, 28, 1, 30),
        _utc(2025, 3, 29, 1, 30),
        _utc(2025, 3, 30, 1, 30),
        _utc(2025, 3, 31, 0, 30),
    ]


def test_berlin_fall_back_fires_the_repeated_time_twice() -> None:
    # Given 02:30 Berlin daily; on 2025-10-26 02:00-03:00 happens twice (CEST, then CET)
    spec = _cron("30 2 * * *", "Europe/Berlin", _utc(2025, 10, 25))
    assert _slots(spec, 4) == [
        _utc(2025, 10, 25, 0, 30),
        _utc(2025, 10, 26, 0, 30),  # 02:30 CEST
        _utc(2025, 10, 26, 1, 30),  # 02:30 CET, the same wall-clock time again
        _utc(2025, 10, 27, 1, 30),
    ]


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("sat,sun", "sun,sat"),
        ("*", "*"),
    ],
)
def test_day_of_week_follows_crontab_not_apscheduler3(field: str, names: str) -> None:
    assert crontab_day_of_week(field) == names


def test_cron_weekday_zero_is_sunday() -> None:
    # 2030-01-06 is a Sunday
    spec = _cron("0 9 * * 0", "UTC", _utc(2030, 1, 1))
    assert _slots(spec, 2) == [_utc(2030, 1, 6, 9), _utc(2030, 1, 13, 9)]


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError):
        build_trigger(_cron("* * *", "UTC", _utc(2030, 1, 1)))
    with pytest.raises(ValueError):
        build_trigger(_cron("* * * * *", "Mars/Olympus", _utc(2030, 1, 1)))
    with pytest.raises(ValueError):
        crontab_day_of_week("3-1")


def test_interval_counts_from_start_at_or_one_interval_after_creation() -> None:
    created = _utc(2030, 1, 1, 12, 0, 0)
    from_creation = TriggerSpec(None, "UTC", 90, None, None, created)
    assert _slots(from_creation, 2) == [
        created + timedelta(seconds=90),
        created + timedelta(seconds=180),
    ]
    start = _utc(2030, 1, 2)
    from_start = TriggerSpec(None, "UTC", 90, start, start + timedelta(seconds=100), created)
    assert _slots(from_start, 5) == [start, start + timedelta(seconds=90)]  # end_at stops it


def test_next_slot_after_a_cursor_stays_on_the_grid() -> None:
    start = _utc(2030, 1, 1)
    spec = TriggerSpec(None, "UTC", 60, start, None, start)
    trigger = build_trigger(spec)
    # a cursor between grid points (e.g. the interval was edited) lands on the next grid point
    assert first_slot(trigger, spec, start + timedelta(seconds=61)) == start + timedelta(
        seconds=120
    )


def test_due_slots_coalesce_within_the_grace_and_drop_older_ones() -> None:
    start = _utc(2030, 1, 1)
    trigger = build_trigger(TriggerSpec(None, "UTC", 60, start, None, start))
    now = start + timedelta(minutes=10, seconds=5)
    # Given slots every minute since `start` and nothing fired: grace 1 h covers all 11 slots
    due = due_slots(trigger, start, now, grace_s=3600)
    assert (due.fire, due.coalesced, due.missed) == (start + timedelta(minutes=10), 10, False)
    assert due.next_slot == start + timedelta(minutes=11)
    # With a 150 s grace only the slots from 10:02:35 on count; the older ones are dropped
    due = due_slots(trigger, start, now, grace_s=150)
    assert (due.fire, due.coalesced, due.missed) == (start + timedelta(minutes=10), 2, True)
    # With a 2 s grace the latest slot (5 s ago) is too old: nothing fires
    due = due_slots(trigger, start, now, grace_s=2)
    assert (due.fire, due.missed) == (None, True)
    assert due.next_slot == start + timedelta(minutes=11)
