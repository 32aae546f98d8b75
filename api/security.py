"""Credentials: argon2 password hashes, JWT access tokens, API keys, single-use tokens.

Only hashes are stored: passwords as argon2, API keys and invitation / password-reset tokens as
SHA-256 (they are 256-bit random values, so a fast hash is enough and lets us look them up).
An access token carries a fingerprint of the user's password hash (`pwv`), so changing the
password (a reset) invalidates every token issued before it without a revocation table.
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


def _jwt_key(settings: Settings) -> bytes:
    """A key of its own for JWTs, derived from DASHIN_SECRET_KEY (never the Fernet key itself)."""
    secret = settings.require_secret_key().encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"dashin-jwt", info=b"hs256").derive(
        secret
    )


def password_version(password_hash: str | None) -> str:
    return sha256_hex(password_hash or "")[:16]


def issue_access_token(
    settings: Settings, user_id: uuid.UUID, password_hash: str | None
) -> AccessToken:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(seconds=settings.jwt_ttl_s),
        "pwv": password_version(password_hash),
    }
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
        return TokenClaims(user_id=uuid.UUID(claims["sub"]), password_version=str(claims["pwv"]))
    except (jwt.InvalidTokenError, KeyError, ValueError):
        return None


def password_version_matches(claims: TokenClaims, password_hash: str | None) -> bool:
    return hmac.compare_digest(claims.password_version, password_version(password_hash))


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


def new_single_use_token() -> NewSecret:
    """For invitations and password resets: 256 random bits, URL-safe."""
    value = secrets.token_urlsafe(32)
    return NewSecret(value=value, hash=sha256_hex(value))
