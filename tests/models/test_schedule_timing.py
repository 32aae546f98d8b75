"""The one cron reading (`models.schedule_timing`) against croniter, a well-kept crontab library.

Random expressions (lists, ranges, steps, names, both day fields restricted) in random zones, from
start instants close to daylight-saving changes. Slots within two hours of a change are left out
of the comparison: there the two libraries legitimately differ (skipped and repeated wall-clock
times), and our rule for them is pinned by the Berlin tests in tests/scheduler/test_triggers.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from models.schedule_timing import (
    TriggerSpec,
    build_trigger,
    describe,
    next_fire_times,
    parse_field,
)

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata")
SLOTS = 12


def _transitions(zone: ZoneInfo) -> list[datetime]:
    """UTC instants in 2025-2027 where the zone's offset changes (hourly scan is enough)."""
    out: list[datetime] = []
    t = datetime(2025, 1, 1, tzinfo=UTC)
    offset = t.astimezone(zone).utcoffset()
    while t < datetime(2028, 1, 1, tzinfo=UTC):
        t += timedelta(hours=1)
        now = t.astimezone(zone).utcoffset()
        if now != offset:
            out.append(t)
            offset = now
    return out


TRANSITIONS = {name: _transitions(ZoneInfo(name)) for name in ZONES}


def _number_part(low: int, high: int, star_steps: bool = True) -> st.SearchStrategy[str]:
    single = st.integers(low, high).map(str)
    # a-b with a < b: croniter reads a one-value range such as `3-3` as the whole cycle, where
    # crontab (and we) read the one value; test_crontab_readings pins ours
    ranged = st.tuples(st.integers(low, high - 1), st.integers(1, high - low)).map(
        lambda ab: f"{ab[0]}-{min(ab[0] + ab[1], high)}"
    )
    bases = ranged | st.just("*") if star_steps else ranged
    stepped = st.tuples(bases, st.integers(1, max(1, (high - low) // 2))).map(
        lambda rs: f"{rs[0]}/{rs[1]}"
    )
    return single | ranged | stepped


def _field(
    low: int, high: int, names: tuple[str, ...] = (), star_steps: bool = True
) -> st.SearchStrategy[str]:
    part = _number_part(low, high, star_steps)
    if names:
        part = part | st.sampled_from(names)
    return st.just("*") | st.lists(part, min_size=1, max_size=3).map(",".join)


EXPRESSIONS = st.tuples(
    _field(0, 59),
    _field(0, 23),
    # the day fields: days every month has; no `*/n` (croniter's reading of a starred step beside
    # the other day field varies; ours is Vixie cron's, pinned in test_crontab_readings)
    _field(1, 28, star_steps=False),
    _field(1, 12, ("jan", "mar", "jun", "oct", "dec")),
    _field(0, 7, ("sun", "mon", "fri", "sat"), star_steps=False),
).map(" ".join)


@st.composite
def _starts(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    changes = TRANSITIONS[zone]
    if changes and draw(st.booleans()):
        base = draw(st.sampled_from(changes))
        start = base - timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    else:
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
            minutes=draw(st.integers(0, 365 * 24 * 60))
        )
    return zone, start


def _near_a_change(instant: datetime, zone: str) -> bool:
    return any(abs(instant - change) <= timedelta(hours=2) for change in TRANSITIONS[zone])


@settings(max_examples=300, deadline=None)
@given(expression=EXPRESSIONS, where=_starts())
def test_slots_match_croniter(expression: str, where: tuple[str, datetime]) -> None:
    zone, start = where
    spec = TriggerSpec(expression, zone, None, None, None, start)
    ours = next_fire_times(build_trigger(spec), start, SLOTS)
    reference = croniter(expression, start.astimezone(ZoneInfo(zone)))
    theirs = [reference.get_next(datetime).astimezone(UTC) for _ in range(SLOTS)]
    horizon = min(ours[-1], theirs[-1])

    def regular(slots: list[datetime]) -> list[datetime]:
        return [s for s in slots if s <= horizon and not _near_a_change(s, zone)]

    assert regular(ours) == regular(theirs), expression


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 9 * * 1", ["2026-12-07", "2026-12-14"]),  # Monday, not APScheduler's Tuesday
        ("0 9 * * 7", ["2026-12-06", "2026-12-13"]),  # 7 is Sunday
        ("0 9 * * 0", ["2026-12-06", "2026-12-13"]),
        ("0 9 * * sat-sun", ["2026-12-05", "2026-12-06"]),
        ("0 9 13 * fri", ["2026-12-11", "2026-12-13"]),  # either day field matching fires
        ("0 9 */10 * *", ["2026-12-11", "2026-12-21"]),
        ("0 9 */10 * mon", ["2026-12-21", "2027-01-11"]),  # a starred day field: both must match
        ("0 9 1 jan,jul *", ["2027-01-01", "2027-07-01"]),
        ("0 9 * * 3-3", ["2026-12-09", "2026-12-16"]),  # one-value range: Wednesday only
    ],
)
def test_crontab_readings(expression: str, days: list[str]) -> None:
    friday = datetime(2026, 12, 4, 12, tzinfo=UTC)
    spec = TriggerSpec(expression, "Europe/Berlin", None, None, None, friday)
    slots = next_fire_times(build_trigger(spec), friday, len(days))
    berlin = ZoneInfo("Europe/Berlin")
    assert [s.astimezone(berlin).date().isoformat() for s in slots] == days
    assert {s.astimezone(berlin).hour for s in slots} == {9}


@pytest.mark.parametrize(
    "expression",
    ["* * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "5-1 * * * *",
     "*/0 * * * *", "* * * * mon-sun-tue", "1st * * * *", "* * L * *"],
)  # fmt: skip
def test_bad_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        build_trigger(TriggerSpec(expression, "UTC", None, None, None, datetime.now(UTC)))


def test_fields_expand_like_crontab() -> None:
    assert parse_field("*", 0) is None
    assert parse_field("10/20", 0) == [10, 30, 50]  # a/n runs from a to the maximum
    assert parse_field("mon-fri/2", 4) == [1, 3, 5]
    assert parse_field("5-7", 4) == [0, 5, 6]


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (("0 9 * * 1", None), "At 09:00, only on Monday (Europe/Berlin)"),
        (("*/15 * * * *", None), "Every 15 minutes (Europe/Berlin)"),
        ((None, 900), "Every 15 minutes"),
        ((None, 3600), "Every hour"),
        ((None, 90), "Every 90 seconds"),
        ((None, 172_800), "Every 2 days"),
    ],
)
def test_descriptions(spec: tuple[str | None, int | None], text: str) -> None:
    cron, interval = spec
    created = datetime(2026, 12, 4, tzinfo=UTC)
    assert describe(TriggerSpec(cron, "Europe/Berlin", interval, None, None, created)) == text
