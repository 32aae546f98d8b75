"""API sign-in sessions and their rotating refresh tokens (issue 18, item 2).

A password or identity-provider sign-in opens one `auth_sessions` row; the access tokens it
issues carry its id (`sid`), so revoking the row (logout, `DELETE /me/sessions/{id}`, reuse
detected) stops them at once, checked in the same query that reads the caller.

Refresh tokens rotate: each use marks the token used and issues its successor in the same
session (the "family"). Presenting a token that was already used means two parties hold it, one
of them a thief; we cannot tell which, so the whole family is revoked (RFC 9700 §4.14.2). Only
SHA-256 hashes are stored, like API keys. The session keeps no secret and no full user agent or
address: a browser/OS family and an address prefix, enough to recognise a device in a list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, created_at, enum_check, uuid_pk

SIGN_IN_METHODS = ("password", "oidc")
REVOKE_REASONS = ("logout", "revoked", "reuse", "password")


class AuthSession(Base):
    __tablename__ = "auth_sessions"
    __table_args__ = (
        enum_check("method", SIGN_IN_METHODS),
        enum_check("revoked_reason", REVOKE_REASONS),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(16))
    #: the identity provider's issuer for an `oidc` session
    issuer: Mapped[str | None] = mapped_column(String(300))
    user_agent: Mapped[str | None] = mapped_column(String(80))
    ip_prefix: Mapped[str | None] = mapped_column(String(64))
    #: fingerprint of the password hash at sign-in: a password change ends the session
    password_version: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(16))


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = uuid_pk()
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


@dataclass(frozen=True)
class Rotated:
    """The outcome of presenting a refresh token: `session` when it was live and unused (its
    successor is `new_hash`'s row); `reused` when it had been used before (family revoked)."""

    session: AuthSession | None
    reused: bool = False


def open_session(
    session: Session,
    *,
    user_id: uuid.UUID,
    method: str,
    issuer: str | None,
    user_agent: str | None,
    ip_prefix: str | None,
    password_version: str,
    refresh_hash: str,
    ttl: timedelta,
) -> AuthSession:
    """A new session with its first refresh token; `ttl` bounds each token (idle timeout)."""
    now = datetime.now(UTC)
    row = AuthSession(
        user_id=user_id,
        method=method,
        issuer=issuer,
        user_agent=user_agent,
        ip_prefix=ip_prefix,
        password_version=password_version,
        last_used_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    session.add(RefreshToken(session_id=row.id, token_hash=refresh_hash, expires_at=now + ttl))
    session.flush()
    return row


def rotate(
    session: Session,
    token_hash: str,
    new_hash: str,
    ttl: timedelta,
    *,
    user_agent: str | None,
    ip_prefix: str | None,
) -> Rotated:
    """Spend a refresh token and issue its successor, in one compare-and-set: two racing uses
    of one token get one win, and the loser is treated as reuse."""
    now = datetime.now(UTC)
    session_id = session.scalar(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.used_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(RefreshToken.session_id)
    )
    if session_id is None:
        spent = session.scalar(
            select(RefreshToken.session_id).where(
                RefreshToken.token_hash == token_hash, RefreshToken.used_at.is_not(None)
            )
        )
        if spent is not None:
            revoke(session, spent, "reuse")
        return Rotated(None, reused=spent is not None)
    row = session.get(AuthSession, session_id, with_for_update=True)
    if row is None or row.revoked_at is not None:
        return Rotated(None)
    row.last_used_at = now
    row.expires_at = now + ttl
    row.user_agent = user_agent or row.user_agent
    row.ip_prefix = ip_prefix or row.ip_prefix
    session.add(RefreshToken(session_id=row.id, token_hash=new_hash, expires_at=now + ttl))
    session.flush()
    return Rotated(row)


def session_for_token(session: Session, token_hash: str) -> uuid.UUID | None:
    """The session a refresh token (spent or not) belongs to."""
    return session.scalar(
        select(RefreshToken.session_id).where(RefreshToken.token_hash == token_hash)
    )


def revoke(
    session: Session, session_id: uuid.UUID, reason: str, user_id: uuid.UUID | None = None
) -> bool:
    """End a session (and so every access and refresh token it issued); with `user_id`, only
    when it is that user's. True when a live session was ended."""
    query = update(AuthSession).where(
        AuthSession.id == session_id, AuthSession.revoked_at.is_(None)
    )
    if user_id is not None:
        query = query.where(AuthSession.user_id == user_id)
    ended = session.scalar(
        query.values(revoked_at=datetime.now(UTC), revoked_reason=reason).returning(AuthSession.id)
    )
    return ended is not None


def revoke_user_sessions(
    session: Session, user_id: uuid.UUID, reason: str, *, keep: uuid.UUID | None = None
) -> None:
    """End every live session of a user (a password change), except `keep` (the caller's)."""
    query = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    session.execute(query.values(revoked_at=datetime.now(UTC), revoked_reason=reason))


def live_sessions(session: Session, user_id: uuid.UUID) -> list[AuthSession]:
    """The user's unrevoked, unexpired sessions, most recently used first."""
    return list(
        session.scalars(
            select(AuthSession)
            .where(
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > datetime.now(UTC),
            )
            .order_by(AuthSession.last_used_at.desc().nulls_last(), AuthSession.id)
        )
    )
