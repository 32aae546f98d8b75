"""Idempotency keys: the first response to a POST, kept for a day so a retry can replay it.

A row is claimed before the request does its work (`claim`: one `INSERT ... ON CONFLICT`, in its
own committed transaction, so a concurrent retry sees it at once), completed with the response
the request produced (`complete`), or released when the request failed before it did anything
(`release`). Keys are scoped to (domain, user): two tenants, or two users, may use the same key.

One statement decides a claim, so two retries racing never both win: the insert takes a free
key; a conflicting row is taken over only when it has expired (the purge has not run yet), or
when it is an abandoned claim (its process died between the claim and the answer) for the same
request. Everything else is answered from the row that is there (`Claim.existing`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, LargeBinary, String, delete, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, created_at

#: how long a completed key replays its response
KEY_TTL = timedelta(hours=24)
#: a claim without an answer for this long belongs to a request whose process died
ABANDONED_AFTER = timedelta(minutes=15)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    domain_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: SHA-256 of the method, path, query and body the key was first used with
    fingerprint: Mapped[str] = mapped_column(String(64))
    #: None while the first request is still in flight
    status_code: Mapped[int | None]
    media_type: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(index=True)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    media_type: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class Existing:
    """The row another request holds: its fingerprint and, once answered, its response."""

    fingerprint: str
    response: StoredResponse | None


def claim(
    session: Session, domain_id: uuid.UUID, user_id: uuid.UUID, key: str, fingerprint: str
) -> Existing | None:
    """Take the key for this request (None), or return the row another request holds."""
    now = func.now()
    table = IdempotencyKey.__table__
    stmt = pg_insert(IdempotencyKey).values(
        domain_id=domain_id,
        user_id=user_id,
        key=key,
        fingerprint=fingerprint,
        expires_at=now + KEY_TTL,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["domain_id", "user_id", "key"],
        set_={
            "fingerprint": stmt.excluded.fingerprint,
            "status_code": None,
            "media_type": None,
            "body": None,
            "created_at": now,
            "expires_at": stmt.excluded.expires_at,
        },
        where=(table.c.expires_at < now)
        | (
            table.c.status_code.is_(None)
            & (table.c.created_at < now - ABANDONED_AFTER)
            & (table.c.fingerprint == stmt.excluded.fingerprint)
        ),
    )
    if session.execute(stmt.returning(literal_column("1"))).first() is not None:
        return None
    row = session.execute(
        select(
            IdempotencyKey.fingerprint,
            IdempotencyKey.status_code,
            IdempotencyKey.media_type,
            IdempotencyKey.body,
        ).where(
            IdempotencyKey.domain_id == domain_id,
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
        )
    ).one_or_none()
    if row is None:  # purged between the two statements: the caller may simply retry
        return Existing(fingerprint, None)
    response = (
        StoredResponse(row.status_code, row.media_type, bytes(row.body or b""))
        if row.status_code is not None
        else None
    )
    return Existing(row.fingerprint, response)


def complete(
    session: Session,
    domain_id: uuid.UUID,
    user_id: uuid.UUID,
    key: str,
    response: StoredResponse,
) -> None:
    """Keep the response the claimed request answered, for replays until the key expires."""
    session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.domain_id == domain_id,
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
        )
        .values(
            status_code=response.status_code, media_type=response.media_type, body=response.body
        )
    )


def release(session: Session, domain_id: uuid.UUID, user_id: uuid.UUID, key: str) -> None:
    """Forget an unanswered claim (the request failed): a retry with the key runs afresh."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.domain_id == domain_id,
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.status_code.is_(None),
        )
    )


def purge_expired(session: Session) -> int:
    """Delete expired keys (the scheduler calls this periodically); returns how many."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < func.now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
