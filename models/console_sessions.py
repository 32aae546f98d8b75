"""Console sign-in sessions: one row per browser session, so signing out revokes it for real.

The browser holds a random token in an HttpOnly cookie; only its SHA-256 is stored (like API
keys). A session remembers how its user signed in (password, or an API key: then it is pinned
to the key's domain and dies with the key), the domain the user last switched to, and the
fingerprint of the password hash at sign-in, so a password reset ends every session as it ends
every JWT. Expired rows are deleted when their user signs in again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ForeignKey, String, and_, delete, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.auth_repo import CallerRow
from models.base import Base, created_at, uuid_pk
from models.tenancy import ApiKey, Membership, User


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id: Mapped[uuid.UUID] = uuid_pk()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    domain_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("domains.id", ondelete="SET NULL"), index=True
    )
    password_version: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime]


@dataclass(frozen=True)
class SessionCaller:
    """A live session and its user as authentication needs them (see `auth_repo.CallerRow`)."""

    session_id: uuid.UUID
    domain_id: uuid.UUID | None  # the domain last switched to (None: the user's default)
    password_version: str
    caller: CallerRow


def create(
    session: Session,
    *,
    token_hash: str,
    user_id: uuid.UUID,
    api_key_id: uuid.UUID | None,
    domain_id: uuid.UUID | None,
    password_version: str,
    ttl: timedelta,
) -> uuid.UUID:
    """Open a session; the user's expired sessions are swept on the way."""
    now = datetime.now(UTC)
    session.execute(
        delete(ConsoleSession).where(
            ConsoleSession.user_id == user_id, ConsoleSession.expires_at <= now
        )
    )
    row = ConsoleSession(
        token_hash=token_hash,
        user_id=user_id,
        api_key_id=api_key_id,
        domain_id=domain_id,
        password_version=password_version,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    return row.id


# The user (and, for a key session, the live key) with the role in the *home* domain: the
# sign-up domain for a password session, the key's domain for a key session.

_BY_TOKEN = (
    select(
        ConsoleSession.id,
        ConsoleSession.domain_id,
        ConsoleSession.password_version,
        User.id,
        User.email,
        User.is_admin,
        User.is_active,
        User.password_hash,
        User.signup_domain_id,
        ApiKey.domain_id,
        Membership.role,
        ApiKey.id,
        ConsoleSession.api_key_id,
        Membership.client_ids,
    )
    .join(User, User.id == ConsoleSession.user_id)
    .outerjoin(ApiKey, and_(ApiKey.id == ConsoleSession.api_key_id, ApiKey.revoked_at.is_(None)))
    .outerjoin(
        Membership,
        and_(
            Membership.user_id == User.id,
            or_(
                and_(
                    ConsoleSession.api_key_id.is_(None),
                    Membership.domain_id == User.signup_domain_id,
                ),
                Membership.domain_id == ApiKey.domain_id,
            ),
        ),
    )
)


def live(session: Session, token_hash: str) -> SessionCaller | None:
    """The unexpired session with this token hash and its user; None when there is none, or
    when it was opened with an API key that has since been revoked."""
    row: Any = session.execute(
        _BY_TOKEN.where(
            ConsoleSession.token_hash == token_hash,
            ConsoleSession.expires_at > datetime.now(UTC),
        )
    ).first()
    if row is None:
        return None
    row = tuple(row)  # 14 columns: past what the typed Row tuples spell out
    session_key_id, live_key_id = row[12], row[11]
    if session_key_id is not None and live_key_id is None:
        return None  # the key was revoked
    home = row[9] if session_key_id is not None else row[8]  # the key's, else sign-up domain
    user_id, email, is_admin, is_active, password_hash = row[3:8]
    caller = CallerRow(
        user_id,
        email,
        is_admin,
        is_active,
        password_hash,
        home,
        row[10],
        live_key_id,
        home_client_ids=row[13],
    )
    return SessionCaller(row[0], row[1], row[2], caller)


def switch_domain(session: Session, session_id: uuid.UUID, domain_id: uuid.UUID) -> None:
    session.execute(
        update(ConsoleSession).where(ConsoleSession.id == session_id).values(domain_id=domain_id)
    )


def revoke(session: Session, token_hash: str) -> None:
    """Sign out: the row goes, so the cookie (even a copy of it) no longer opens anything."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))
