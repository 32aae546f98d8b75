"""Outbox rows: work a worker must do once the transaction that asked for it has committed.

A webhook message (`models.webhooks`) or a queued mail (`models.mail`) is inserted in the same
transaction as the change that caused it, so the change and "tell someone" commit together or
not at all. Then three parts cooperate, none of which can lose a row:

- `ring(session, kind, id)`: the repository leaves the row's id in `session.info`; the
  `after_commit` listener that `workers.outbox` installs enqueues it once the commit is done (a
  rollback drops it). A process without the listener (a CLI command) loses nothing:
- `due`: the scheduler's outbox sweep enqueues pending rows that nobody claimed for a grace
  period (a lost doorbell, a dead worker), like the reaper does for queued jobs.
- `claim` / `succeed` / `fail`: the worker's compare-and-set on one row. Claiming pushes
  `next_attempt_at` past the attempt's deadline, so a duplicate message finds nothing to do and
  the sweep leaves a row in flight alone.

Both tables share the columns of `OutboxColumns`; statuses: `pending` (waiting or being
tried), `done` (delivered), `failed` (given up).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Integer, String, Text, delete, func, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

OutboxKind = Literal["webhook", "mail"]
OUTBOX_STATUSES = ("pending", "done", "failed")
#: a delayed message may arrive a little before the row's time on the database's clock
CLOCK_TOLERANCE = timedelta(seconds=1)
_INFO_KEY = "dashin.outbox"


class OutboxColumns:
    """The delivery state every outbox table carries (a mixin: copied into each table)."""

    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)


def ring(session: Session, kind: OutboxKind, row_id: uuid.UUID) -> None:
    """Ask for `row_id` to be enqueued once this session's transaction commits."""
    session.info.setdefault(_INFO_KEY, []).append((kind, row_id))


def take_rung(session: Session) -> list[tuple[OutboxKind, uuid.UUID]]:
    """The ids rung in the transaction that just ended (and forget them)."""
    rung: list[tuple[OutboxKind, uuid.UUID]] = session.info.pop(_INFO_KEY, [])
    return rung


def claim(session: Session, model: Any, row_id: uuid.UUID, hold_s: float) -> int | None:
    """Take a pending, due row for one attempt; its attempt number, or None (not ours now).

    `next_attempt_at` moves `hold_s` ahead: until then the row counts as in flight.
    """
    attempt: int | None = session.scalar(
        update(model)
        .where(
            model.id == row_id,
            model.status == "pending",
            model.next_attempt_at <= func.now() + CLOCK_TOLERANCE,
        )
        .values(
            attempts=model.attempts + 1,
            next_attempt_at=func.now() + timedelta(seconds=hold_s),
        )
        .returning(model.attempts)
    )
    return attempt


def succeed(session: Session, model: Any, row_id: uuid.UUID, **values: Any) -> None:
    session.execute(
        update(model).where(model.id == row_id).values(status="done", last_error=None, **values)
    )


def fail(
    session: Session,
    model: Any,
    row_id: uuid.UUID,
    error: str,
    retry_in_s: float | None,
    **values: Any,
) -> None:
    """Record a failed attempt: try again in `retry_in_s` seconds, or give up (None)."""
    if retry_in_s is None:
        values.update(status="failed")
    else:
        values.update(next_attempt_at=func.now() + timedelta(seconds=retry_in_s))
    session.execute(update(model).where(model.id == row_id).values(last_error=error, **values))


def due(session: Session, model: Any, grace_s: float, limit: int = 500) -> list[uuid.UUID]:
    """Pending rows due for `grace_s` without a claim: their doorbell was lost. Their
    `next_attempt_at` restarts now, so each is sent again at most once per grace period."""
    cutoff = func.now() - timedelta(seconds=grace_s)
    ids: list[uuid.UUID] = list(
        session.scalars(
            select(model.id)
            .where(model.status == "pending", model.next_attempt_at <= cutoff)
            .order_by(model.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        session.execute(update(model).where(model.id.in_(ids)).values(next_attempt_at=func.now()))
    return ids


def purge(session: Session, model: Any, older_than: timedelta, limit: int = 1000) -> int:
    """Delete up to `limit` settled rows (delivered or given up) older than `older_than`."""
    old = (
        select(model.id)
        .where(model.status != "pending", model.created_at < func.now() - older_than)
        .limit(limit)
        .scalar_subquery()
    )
    deleted = session.execute(delete(model).where(model.id.in_(old)).returning(model.id))
    return len(deleted.all())
