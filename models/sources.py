"""Data sources (a connector plus its config and encrypted credentials) and uploaded files.

Uploads live in PostgreSQL as 1 MiB chunks, so no worker depends on another machine's disk.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, DomainResource, jsonb_default


class DataSource(DomainResource, Base):
    __tablename__ = "data_sources"

    type: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = jsonb_default()
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet token, never clear
    sync_state: Mapped[dict[str, Any]] = jsonb_default()
    jobs_total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    jobs_failed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    leads_total: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_run_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: credit budgets (issue 19): per calendar month (UTC) over all jobs, and per job; None: none
    monthly_credit_budget: Mapped[int | None] = mapped_column(Integer)
    job_credit_budget: Mapped[int | None] = mapped_column(Integer)
    #: the provider's credits left as its usage headers last said, and when
    credit_balance: Mapped[int | None] = mapped_column(BigInteger)
    credit_balance_at: Mapped[datetime | None]
    #: the last finished job's warnings (`jobs.warnings`), shown with the source's health
    last_warnings: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    #: soft delete: set by DELETE, cleared by restore; a deleted source starts no job
    deleted_at: Mapped[datetime | None]


class Upload(DomainResource, Base):
    __tablename__ = "uploads"

    data_source_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    sha256: Mapped[str | None] = mapped_column(String(64))
    chunk_size: Mapped[int] = mapped_column(Integer, server_default=text("1048576"))
    completed_at: Mapped[datetime | None]


class UploadChunk(Base):
    __tablename__ = "upload_chunks"

    upload_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
