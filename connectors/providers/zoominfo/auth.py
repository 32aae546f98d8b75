"""ZoomInfo authentication: a JWT per credential, by password or by a client-signed RS256 JWT
("PKI"), cached for the whole process.

ZoomInfo's JWTs live 60 minutes and `/authenticate` may only be asked once a second, so tokens
are shared by every job using the same credential, renewed at 55/60 of their life and once more
when a call answers 401; the connector (`.connector`) only asks `TokenSource.token()`.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jwt
from pydantic import SecretStr

from connectors.base import RateLimiter, RunContext
from connectors.errors import ConfigError

if TYPE_CHECKING:
    from connectors.providers.zoominfo.connector import ZoomInfoConfig

#: renew a token when this share of its life has passed (55 of 60 minutes)
TOKEN_RENEW_AT = 55 / 60
TOKEN_LIFE_S = 3600.0
AUTH_SPACING_S = 1.05  # /authenticate allows one request per second


class _Tokens:
    """JWTs cached per credential for the whole process, renewed before they expire."""

    lock = threading.Lock()
    cache: dict[str, tuple[str, float]] = {}  # credential key -> (jwt, renew at epoch seconds)
    next_auth: dict[str, float] = {}  # key -> earliest monotonic time of the next authenticate
    clock: Callable[[], float] = time.time


def _credential_key(config: ZoomInfoConfig) -> str:
    secret = config.password or config.private_key
    parts = (config.base_url, config.username, config.client_id or "", reveal(secret))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def reveal(secret: SecretStr | None) -> str:
    return "" if secret is None else secret.get_secret_value()


def _renew_at(token: str, now: float) -> float:
    """When to renew `token` by our clock: after 55/60 of the life it was issued with."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    exp, iat = claims.get("exp"), claims.get("iat")
    life = TOKEN_LIFE_S
    if isinstance(exp, int | float) and isinstance(iat, int | float) and exp > iat:
        life = float(exp) - float(iat)
    return now + life * TOKEN_RENEW_AT


class TokenSource:
    """One session's way to the JWT of its credential; `send` posts to the API."""

    def __init__(
        self,
        config: ZoomInfoConfig,
        ctx: RunContext | None,
        *,
        send: Callable[..., dict[str, Any]],
        limiter: RateLimiter | None,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.key = _credential_key(config)
        self._send = send
        self.limiter = limiter

    def _authenticate(self) -> str:
        """A fresh JWT; callers hold `_Tokens.lock`, which also spaces calls a second apart."""
        wait = _Tokens.next_auth.get(self.key, 0.0) - time.monotonic()
        if wait > 0 and self.ctx is not None:
            self.ctx.wait(wait)
        elif wait > 0:
            time.sleep(wait)
        kwargs: dict[str, Any]
        if self.config.password is not None:
            creds = {"username": self.config.username, "password": reveal(self.config.password)}
            kwargs = {"json": creds}
        else:
            kwargs = {"headers": {"Authorization": f"Bearer {self._client_jwt()}"}}
        try:
            body = self._send("/authenticate", self.limiter, **kwargs)
        finally:
            _Tokens.next_auth[self.key] = time.monotonic() + AUTH_SPACING_S
        token = body.get("jwt")
        if not isinstance(token, str) or not token:
            raise ConfigError("zoominfo /authenticate answered without a jwt")
        return token

    def _client_jwt(self) -> str:
        now = int(_Tokens.clock())
        claims = {
            "aud": "enterprise_api",
            "iss": "api-client@zoominfo.com",
            "username": self.config.username,
            "client_id": self.config.client_id,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        try:
            return jwt.encode(claims, reveal(self.config.private_key), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigError(
                f"private_key cannot sign an RS256 JWT: {type(exc).__name__}"
            ) from None

    def token(self, stale: str | None = None) -> str:
        """The cached JWT, renewed when due or when it is `stale` (it just answered 401)."""
        with _Tokens.lock:
            cached = _Tokens.cache.get(self.key)
            now = _Tokens.clock()
            if cached is None or cached[0] == stale or now >= cached[1]:
                token = self._authenticate()
                cached = (token, _renew_at(token, now))
                _Tokens.cache[self.key] = cached
            return cached[0]
