"""Jobs (one scrape run), their structured log lines and their row errors.

Counters are columns, not JSON, so a page commit increments them atomically in the fenced UPDATE.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, DomainResource, created_at, enum_check, jsonb_default
from models.job_statuses import JOB_STATUSES

LOG_LEVELS = ("debug", "info", "warning", "error")
COUNTERS = ("pages", "fetched", "inserted", "updated", "unchanged", "rejected")


class Job(DomainResource, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "slot_time"),
        enum_check("status", JOB_STATUSES),
        CheckConstraint(
            "pause_reason IS NULL OR pause_reason IN "
            "('user', 'rate_limited', 'shutdown', 'budget_exhausted')",
            name="pause_reason_valid",
        ),
        CheckConstraint(
            "fetched = inserted + updated + unchanged + rejected", name="counters_balance"
        ),
        Index("ix_jobs_domain_created", "domain_id", "created_at"),
        Index("ix_jobs_status_heartbeat", "status", "heartbeat_at"),
        Index("ix_jobs_data_source", "data_source_id", "created_at"),
        Index("ix_jobs_campaign", "campaign_id"),
    )

    data_source_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE")
    )
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL")
    )
    slot_time: Mapped[datetime | None]
    queue: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    resume_at: Mapped[datetime | None]
    params: Mapped[dict[str, Any]] = jsonb_default()
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    lease: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    enqueued_at: Mapped[datetime | None]
    log_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    pages: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    fetched: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    inserted: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    unchanged: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rejected: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    credits_used: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    progress_done: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    progress_total: Mapped[int | None] = mapped_column(BigInteger)
    #: matches the connector found out of reach (a capped search's unsplittable remainder)
    progress_missed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    #: machine-readable failure code (`all_records_rejected`, `auth_failed`, ...)
    error_code: Mapped[str | None] = mapped_column(String(64))
    #: what a completed job did not do: `[{"code", "count", "message"}]` (models.job_outcome)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    heartbeat_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobLog(Base):
    """A structured log line. `seq` is per job and commit-ordered (ARCHITECTURE §8)."""

    __tablename__ = "job_logs"
    __table_args__ = (UniqueConstraint("job_id", "seq"), enum_check("level", LOG_LEVELS))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = created_at()
    level: Mapped[str] = mapped_column(String(8))
    event: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text, server_default="")
    fields: Mapped[dict[str, Any]] = jsonb_default()


class JobRecordError(Base):
    """A rejected record: 1-based record number, physical line for files, field and reason."""

    __tablename__ = "job_record_errors"
    __table_args__ = (Index("ix_job_record_errors_job_record", "job_id", "record"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    record: Mapped[int | None] = mapped_column(BigInteger)
    line: Mapped[int | None] = mapped_column(BigInteger)
    field: Mapped[str | None] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
