"""The record of the scheduler's backups: one row per attempt, so every API replica can say
when the last verified backup was (`/metrics`) without seeing the backup directory.

A platform table, not tenant data: it has no domain and only platform paths read it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BigInteger, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, enum_check

BACKUP_STATUSES = ("running", "verified", "failed")
#: a `running` row older than this belongs to a process that died mid-backup
STALE_AFTER = timedelta(hours=6)


class Backup(Base):
    __tablename__ = "backups"
    __table_args__ = (enum_check("status", BACKUP_STATUSES),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    file: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    rows: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)


def start(session: Session, file: str, now: datetime) -> int | None:
    """Record a new attempt; None while another one is running (and not stale)."""
    running = session.scalar(
        select(Backup.id)
        .where(Backup.status == "running", Backup.started_at > now - STALE_AFTER)
        .limit(1)
    )
    if running is not None:
        return None
    backup = Backup(started_at=now, status="running", file=file)
    session.add(backup)
    session.flush()
    return backup.id


def finish(
    session: Session,
    backup_id: int,
    now: datetime,
    *,
    size_bytes: int | None = None,
    rows: int | None = None,
    error: str | None = None,
) -> None:
    session.execute(
        update(Backup)
        .where(Backup.id == backup_id)
        .values(
            finished_at=now,
            status="failed" if error else "verified",
            size_bytes=size_bytes,
            rows=rows,
            error=error,
        )
    )


def last(session: Session, status: str) -> Backup | None:
    return session.scalar(
        select(Backup).where(Backup.status == status).order_by(Backup.started_at.desc()).limit(1)
    )
