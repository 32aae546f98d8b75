"""Wire shapes of schedules (ARCHITECTURE §9) and the timing rules a schedule must satisfy.

Timing is validated as a whole (after a PATCH is merged into the stored schedule), because the
rules span fields: exactly one of `cron` and `interval_seconds`, a real IANA `timezone`, a crontab
expression as `models.schedule_timing` reads it (the same reading the scheduler fires by),
`end_at` after `start_at`. Each failure names its field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, Field

from api.schemas import examples as ex
from api.schemas.common import JsonObject, example
from models.schedule_timing import (
    TriggerSpec,
    build_trigger,
    describe,
    next_fire_times,
    utc_now,
)
from models.schedules import Schedule
from runtime.errors import FieldError, ValidationFailed

Overlap = Literal["skip", "queue", "allow"]


class ScheduleCreate(BaseModel):
    model_config = example(
        {
            "name": "Weekday mornings",
            "data_source_id": ex.SOURCE_ID,
            "cron": "30 9 * * 1-5",
            "timezone": "Europe/Berlin",
            "jitter_seconds": 60,
            "enabled": True,
            "params": {"limit": 200},
            "overlap": "skip",
        }
    )
    name: str | None = Field(None, max_length=200)
    data_source_id: uuid.UUID
    campaign_id: uuid.UUID | None = None
    #: five-field crontab (`*/15 * * * *`), evaluated in `timezone`; or use `interval_seconds`
    cron: str | None = Field(None, max_length=120)
    timezone: str = Field("UTC", max_length=64)
    interval_seconds: int | None = Field(None, gt=0, le=2**31 - 1)
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    #: fire up to this many seconds late, at random (spreads load); the slot time stays exact
    jitter_seconds: int = Field(0, ge=0, le=86_400)
    enabled: bool = True
    params: JsonObject = Field(default_factory=dict)
    #: when the previous run is still going: skip this slot, queue it anyway, or allow both
    overlap: Overlap = "skip"


class ScheduleUpdate(BaseModel):
    """Fields to change; a field sent as null is cleared (e.g. `cron: null` with an interval)."""

    model_config = example({"enabled": False})

    name: str | None = Field(None, max_length=200)
    data_source_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    cron: str | None = Field(None, max_length=120)
    timezone: str | None = Field(None, max_length=64)
    interval_seconds: int | None = Field(None, gt=0, le=2**31 - 1)
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    jitter_seconds: int | None = Field(None, ge=0, le=86_400)
    enabled: bool | None = None
    params: JsonObject | None = None
    overlap: Overlap | None = None

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent (null included where null means "clear")."""
        not_nullable = {
            "data_source_id",
            "timezone",
            "jitter_seconds",
            "enabled",
            "params",
            "overlap",
        }
        values = self.model_dump(exclude_unset=True)
        for name in not_nullable & values.keys():
            if values[name] is None:
                raise ValidationFailed(
                    "invalid schedule", [FieldError(name, "null", "this field cannot be null")]
                )
        return values


def check_timing(values: dict[str, Any]) -> None:
    """Raise a 422 naming each timing field that is wrong in the merged `values`."""
    errors: list[FieldError] = []
    cron, interval = values.get("cron"), values.get("interval_seconds")
    if (cron is None) == (interval is None):
        field = "cron" if cron is not None else "interval_seconds"
        errors.append(
            FieldError(field, "cron_xor_interval", "give exactly one of cron and interval_seconds")
        )
    timezone = values.get("timezone") or "UTC"
    tz: ZoneInfo | None = None
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(FieldError("timezone", "unknown_timezone", f"unknown time zone {timezone!r}"))
    if cron is not None:
        try:
            spec = TriggerSpec(cron, timezone if tz else "UTC", None, None, None, utc_now())
            build_trigger(spec)
        except ValueError as exc:
            errors.append(FieldError("cron", "invalid_cron", f"invalid cron expression: {exc}"))
    start_at, end_at = values.get("start_at"), values.get("end_at")
    if start_at is not None and end_at is not None and end_at <= start_at:
        errors.append(FieldError("end_at", "before_start", "end_at must be after start_at"))
    if errors:
        raise ValidationFailed("invalid schedule", errors)


class ScheduleOut(BaseModel):
    model_config = example(
        {
            "id": ex.SCHEDULE_ID,
            "domain_id": ex.DOMAIN_ID,
            "name": "Weekday mornings",
            "data_source_id": ex.SOURCE_ID,
            "campaign_id": ex.CAMPAIGN_ID,
            "cron": "30 9 * * 1-5",
            "timezone": "Europe/Berlin",
            "interval_seconds": None,
            "start_at": None,
            "end_at": None,
            "jitter_seconds": 60,
            "enabled": True,
            "params": {"limit": 200},
            "overlap": "skip",
            "next_run_at": "2026-11-23T08:30:00Z",
            "description": "At 09:30, Monday through Friday (Europe/Berlin)",
            "next_fire_times": [f"2026-11-{day}T08:30:00Z" for day in range(23, 28)],
            "last_fired_at": "2026-11-20T08:30:00Z",
            "skipped_count": 0,
            "last_skipped_at": None,
            "created_by": ex.USER_ID,
            "created_at": ex.CREATED_AT,
            "updated_at": ex.CREATED_AT,
            "deleted_at": None,
        }
    )

    id: uuid.UUID
    domain_id: uuid.UUID
    name: str | None
    data_source_id: uuid.UUID
    campaign_id: uuid.UUID | None
    cron: str | None
    timezone: str
    interval_seconds: int | None
    start_at: datetime | None
    end_at: datetime | None
    jitter_seconds: int
    enabled: bool
    params: dict[str, Any]
    overlap: str
    #: the next slot (un-jittered); null when disabled or past `end_at`
    next_run_at: datetime | None
    #: the timing in words: "At 09:00, only on Monday (Europe/Berlin)", "Every 15 minutes"
    description: str
    #: the next five slots (un-jittered, UTC); empty when disabled or past `end_at`
    next_fire_times: list[datetime]
    last_fired_at: datetime | None
    skipped_count: int
    last_skipped_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    #: set when deleted (listed only with `?include_deleted=true`); `POST .../restore` clears it
    deleted_at: datetime | None = None

    @classmethod
    def build(cls, schedule: Schedule, now: datetime | None = None) -> ScheduleOut:
        spec = TriggerSpec.from_row(schedule)
        computed: dict[str, Any]
        try:
            trigger = build_trigger(spec)
            description = describe(spec)
        except ValueError as exc:
            # stored before this reading (e.g. APScheduler-only syntax such as `last`): shown,
            # never fired (the scheduler logs `schedule.invalid`), fixed by a PATCH
            computed = {"description": f"invalid schedule: {exc}", "next_fire_times": []}
        else:
            upcoming = next_fire_times(trigger, now or utc_now(), 5) if schedule.enabled else []
            computed = {"description": description, "next_fire_times": upcoming}
        fields = {
            name: getattr(schedule, name) for name in cls.model_fields if name not in computed
        }
        return cls.model_validate({**fields, **computed})
