"""Queries over API keys: looking a presented key up, recording its use, issuing and revoking.

Split from `models.tenancy_repo` because API keys are their own lifecycle (issue, use, revoke)
next to users and domains. Functions flush and never commit: the edge owns the transaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from models.tenancy import ApiKey
from runtime.errors import NotFound


def find_live_api_key(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(
        select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )


#: A key's use is recorded at most this often, so reads do not write on every request.
TOUCH_EVERY = timedelta(minutes=1)


def touch_due(last_used_at: datetime | None) -> bool:
    """Whether `touch_api_key` would record a use now (a caller that read `last_used_at` with
    the key skips the UPDATE, and its round trip, otherwise)."""
    return last_used_at is None or last_used_at < datetime.now(UTC) - TOUCH_EVERY


def touch_api_key(session: Session, key_id: uuid.UUID) -> None:
    """Record use, at most once per `TOUCH_EVERY` per key."""
    stamp = datetime.now(UTC)
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < stamp - TOUCH_EVERY),
        )
        .values(last_used_at=stamp)
    )


def create_api_key(
    session: Session,
    *,
    user_id: uuid.UUID,
    domain_id: uuid.UUID,
    name: str,
    prefix: str,
    key_hash: str,
    service: bool = False,
) -> ApiKey:
    key = ApiKey(
        user_id=user_id,
        domain_id=domain_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        service=service,
    )
    session.add(key)
    session.flush()
    return key


def api_keys_query(user_id: uuid.UUID) -> Select[ApiKey]:
    return select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))


def revoke_api_key(session: Session, key_id: uuid.UUID, owner_id: uuid.UUID | None) -> uuid.UUID:
    """Revoke a live key; `owner_id` None lets a platform admin revoke anyone's key. Answers
    the key's domain (its audit row belongs there)."""
    query = update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    if owner_id is not None:
        query = query.where(ApiKey.user_id == owner_id)
    revoked = session.scalar(query.values(revoked_at=datetime.now(UTC)).returning(ApiKey.domain_id))
    if revoked is None:
        raise NotFound(f"API key {key_id} not found")
    return revoked


def revoke_user_keys(
    session: Session, user_id: uuid.UUID, *, domain_id: uuid.UUID | None = None
) -> int:
    """Revoke the user's live keys that are not service keys (in one domain, or all); how many.

    A password reset ends them (the account may have been taken over: keys minted meanwhile
    must not outlive the reset), and so does leaving a domain; a `service` key, an integration
    someone decided must keep running, survives both (issue 14)."""
    query = update(ApiKey).where(
        ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None), ApiKey.service.is_(False)
    )
    if domain_id is not None:
        query = query.where(ApiKey.domain_id == domain_id)
    revoked = session.scalars(query.values(revoked_at=datetime.now(UTC)).returning(ApiKey.id))
    return len(revoked.all())
