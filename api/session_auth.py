"""Browser sessions of the operator console (`/console`): the cookie, its CSRF token, and the
check that a cookie still opens a live session.

Here, below both `api.deps` and `api.console`, because two kinds of route read the cookie: the
console's pages, and the API's GET streams (a browser's `EventSource` cannot send an
`Authorization` header). Nothing that changes state accepts the cookie without the CSRF token,
which a page of another site cannot read:

    cookie   dashin_session = 256 random bits; the database keeps only its SHA-256
    CSRF     HMAC-SHA256(key derived from DASHIN_SECRET_KEY, token): the same for the whole
             session, so every form of every tab carries a valid one; checked in constant time
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.orm import Session

from api import security
from models import console_sessions
from models.console_sessions import SessionCaller
from runtime.settings import Settings

COOKIE_NAME = "dashin_session"
#: a signed-out browser's double-submit token for the sign-in form (login CSRF)
LOGIN_CSRF_COOKIE = "dashin_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL = timedelta(hours=12)


@dataclass(frozen=True)
class NewSession:
    token: str  # goes into the cookie, never stored
    csrf: str


def _csrf_key(settings: Settings) -> bytes:
    secret = settings.require_secret_key().encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"dashin-console", info=b"csrf").derive(
        secret
    )


def csrf_for(settings: Settings, token: str) -> str:
    return hmac.new(_csrf_key(settings), token.encode(), "sha256").hexdigest()


def csrf_matches(settings: Settings, token: str, offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(csrf_for(settings, token), offered or "")


def open_session(
    session: Session,
    settings: Settings,
    user_id: uuid.UUID,
    *,
    api_key_id: uuid.UUID | None,
    domain_id: uuid.UUID | None,
    password_hash: str | None,
) -> NewSession:
    """Store a new session for the user and return the cookie value and its CSRF token."""
    token = secrets.token_urlsafe(32)
    console_sessions.create(
        session,
        token_hash=security.sha256_hex(token),
        user_id=user_id,
        api_key_id=api_key_id,
        domain_id=domain_id,
        password_version=security.password_version(password_hash),
        ttl=SESSION_TTL,
    )
    return NewSession(token=token, csrf=csrf_for(settings, token))


def live_session(session: Session, token: str | None) -> SessionCaller | None:
    """The session this cookie value opens, if it is unexpired, its user active, its API key
    (if it was opened with one) unrevoked and, for a password session, the password unchanged
    since sign-in (a reset ends sessions as it ends access tokens)."""
    if not token:
        return None
    found = console_sessions.live(session, security.sha256_hex(token))
    if found is None or not found.caller.is_active:
        return None
    if found.caller.api_key_id is None and not hmac.compare_digest(
        found.password_version, security.password_version(found.caller.password_hash)
    ):
        return None
    return found


def close_session(session: Session, token: str | None) -> None:
    if token:
        console_sessions.revoke(session, security.sha256_hex(token))
