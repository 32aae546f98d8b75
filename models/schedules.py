"""Recurring scrapes. The table is the source of truth; the scheduler mirrors it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, DomainResource, enum_check, jsonb_default

OVERLAP_POLICIES = ("skip", "queue", "allow")


class Schedule(DomainResource, Base):
    __tablename__ = "schedules"
    __table_args__ = (
        enum_check("overlap", OVERLAP_POLICIES),
        CheckConstraint("(cron IS NULL) <> (interval_seconds IS NULL)", name="cron_xor_interval"),
        CheckConstraint("interval_seconds IS NULL OR interval_seconds > 0", name="interval_pos"),
        CheckConstraint("jitter_seconds >= 0", name="jitter_nonneg"),
    )

    name: Mapped[str | None] = mapped_column(String(200))
    data_source_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    cron: Mapped[str | None] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    start_at: Mapped[datetime | None]
    end_at: Mapped[datetime | None]
    jitter_seconds: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    overlap: Mapped[str] = mapped_column(String(8), server_default="skip")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    params: Mapped[dict[str, Any]] = jsonb_default()
    next_run_at: Mapped[datetime | None]
    last_fired_at: Mapped[datetime | None]
    skipped_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_skipped_at: Mapped[datetime | None]
    #: soft delete: set by DELETE, cleared by restore; a deleted schedule never fires
    deleted_at: Mapped[datetime | None]
