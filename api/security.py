"""Credentials: argon2 password hashes, JWT access tokens, API keys, single-use tokens.

Only hashes are stored: passwords as argon2, API keys and invitation / password-reset tokens as
SHA-256 (they are 256-bit random values, so a fast hash is enough and lets us look them up).
An access token carries a fingerprint of the user's password hash (`pwv`), so changing the
password (a reset) invalidates every token issued before it without a revocation table; one
issued with a refresh token also names its sign-in session (`sid`), so logging out of that
session ends it at once (`models.auth_sessions`). Refresh tokens (`drt_...`) are opaque random
values stored as SHA-256, like API keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from runtime.settings import Settings

API_KEY_PREFIX = "dsk_"
REFRESH_TOKEN_PREFIX = "drt_"
API_KEY_SHOWN_PREFIX_LEN = 12  # "dsk_" + 8 characters: enough to tell keys apart in a list
JWT_ALGORITHM = "HS256"

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("dashin-timing-equaliser")


def set_password_hasher(hasher: PasswordHasher) -> None:
    """Swap the argon2 parameters (tests use cheap ones; production keeps the library defaults)."""
    global _hasher, _DUMMY_HASH
    _hasher = hasher
    _DUMMY_HASH = hasher.hash("dashin-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; spends the same work when there is no hash to check."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- access tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    password_version: str
    session_id: uuid.UUID | None = None


def _jwt_key(settings: Settings, purpose: bytes = b"hs256") -> bytes:
    """A key of its own for JWTs, derived from DASHIN_SECRET_KEY (never the Fernet key itself).

    Each kind of token has its own key (`purpose`), so one kind can never pass for another.
    """
    secret = settings.require_secret_key().encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"dashin-jwt", info=purpose).derive(
        secret
    )


def password_version(password_hash: str | None) -> str:
    return sha256_hex(password_hash or "")[:16]


def issue_access_token(
    settings: Settings,
    user_id: uuid.UUID,
    password_hash: str | None,
    session_id: uuid.UUID | None = None,
) -> AccessToken:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(seconds=settings.jwt_ttl_s),
        "pwv": password_version(password_hash),
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    token = jwt.encode(claims, _jwt_key(settings), algorithm=JWT_ALGORITHM)
    return AccessToken(token=token, expires_in=settings.jwt_ttl_s)


def verify_access_token(settings: Settings, token: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token of ours; None for anything else."""
    try:
        claims = jwt.decode(
            token,
            _jwt_key(settings),
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "iat"]},
        )
        sid = claims.get("sid")
        return TokenClaims(
            user_id=uuid.UUID(claims["sub"]),
            password_version=str(claims["pwv"]),
            session_id=uuid.UUID(sid) if sid else None,
        )
    except (jwt.InvalidTokenError, KeyError, ValueError):
        return None


def password_version_matches(claims: TokenClaims, password_hash: str | None) -> bool:
    return hmac.compare_digest(claims.password_version, password_version(password_hash))


# --- email change ----------------------------------------------------------------------------

EMAIL_CHANGE_TTL = timedelta(hours=1)
_EMAIL_CHANGE_KEY = b"email-change"


@dataclass(frozen=True)
class EmailChange:
    user_id: uuid.UUID
    old_email: str
    new_email: str


def issue_email_change_token(settings: Settings, change: EmailChange) -> str:
    """A signed token mailed to the new address; confirming it proves the user reads that box.

    It names the address it replaces, so once the change is made (or the email changed in
    another way) the token no longer applies: single use without a table of tokens.
    """
    now = datetime.now(UTC)
    claims = {
        "sub": str(change.user_id),
        "old": change.old_email,
        "new": change.new_email,
        "iat": now,
        "exp": now + EMAIL_CHANGE_TTL,
    }
    return jwt.encode(claims, _jwt_key(settings, _EMAIL_CHANGE_KEY), algorithm=JWT_ALGORITHM)


def read_email_change_token(settings: Settings, token: str) -> EmailChange | None:
    """The change a valid, unexpired token of ours asks for; None for anything else."""
    try:
        claims = jwt.decode(
            token,
            _jwt_key(settings, _EMAIL_CHANGE_KEY),
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "old", "new"]},
        )
        return EmailChange(uuid.UUID(claims["sub"]), str(claims["old"]), str(claims["new"]))
    except (jwt.InvalidTokenError, KeyError, ValueError):
        return None


# --- API keys and single-use tokens ----------------------------------------------------------


@dataclass(frozen=True)
class NewSecret:
    """A freshly generated secret: `value` is shown once, only `hash` is stored."""

    value: str
    hash: str

    @property
    def shown_prefix(self) -> str:
        return self.value[:API_KEY_SHOWN_PREFIX_LEN]


def new_api_key() -> NewSecret:
    value = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewSecret(value=value, hash=sha256_hex(value))


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(API_KEY_PREFIX)


def new_refresh_token() -> NewSecret:
    value = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return NewSecret(value=value, hash=sha256_hex(value))


def new_single_use_token() -> NewSecret:
    """For invitations and password resets: 256 random bits, URL-safe."""
    value = secrets.token_urlsafe(32)
    return NewSecret(value=value, hash=sha256_hex(value))
