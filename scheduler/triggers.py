"""Slot arithmetic for the scheduler loop: which due slots a tick fires, coalesces or drops.

The calendar itself (crontab fields, time zones, DST, the interval grid) is read in one place,
`models.schedule_timing`, which the API uses too, so `next_run_at` shown by the API is the slot
fired here. APScheduler's triggers never add jitter here (3.11 adds it inside
`get_next_fire_time`, which would move the slot itself — NOTES.md): the loop jitters the enqueue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from models.schedule_timing import (
    TriggerSpec,
    build_trigger,
    first_slot,
    next_slot_after,
)

__all__ = ["DueSlots", "TriggerSpec", "build_trigger", "due_slots", "first_slot", "next_slot_after"]

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class DueSlots:
    """What a tick should do with a schedule whose next slot has come."""

    fire: datetime | None  # the latest due slot within the misfire grace, or None
    coalesced: int  # other due slots within the grace, folded into `fire`
    missed: bool  # some due slots were older than the grace and were dropped
    next_slot: datetime | None  # the first slot after `now` (None: the schedule has ended)


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
