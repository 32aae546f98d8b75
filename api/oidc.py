"""Signing in with an identity provider: verifying OpenID Connect ID tokens (issue 18, item 2).

Clerk, Google, Microsoft Entra, Auth0 and Keycloak all sign their ID tokens (Clerk: session
tokens from a JWT template) with a key from a JSON Web Key Set the issuer publishes. A token is
accepted only when, in this order:

    its header names RS256 or ES256 (never `none`, never HS*: a shared-secret algorithm would
        let anyone who reads the public key forge tokens), and its `iss` is a configured issuer
    the issuer's key with the header's `kid` verifies the signature (the key's type must fit
        the algorithm, and its own `alg` / `use` must not say otherwise)
    `aud` holds the configured audience, `exp` / `iat` / `nbf` hold within a small leeway
    `email` is present and, when the token says, `email_verified` is true

Keys are fetched on first use (the `jwks_uri` of `<issuer>/.well-known/openid-configuration`,
unless configured), cached for `DASHIN_OIDC_JWKS_TTL_S`, and fetched again when a token names a
key we do not know (the provider rotated its keys) — at most once per
`DASHIN_OIDC_JWKS_MIN_REFRESH_S` per issuer, so tokens with made-up key ids cannot make us
hammer the provider. While the provider is unreachable, the keys we have keep working.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog

from api.problems import NotAuthenticated
from runtime.errors import TransientFailure
from runtime.settings import OidcIssuer, Settings

ALGORITHMS = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}  # alg → (kty, crv)
FETCH_TIMEOUT_S = 5.0
MAX_DOCUMENT_BYTES = 512 * 1024
log = structlog.get_logger("api.oidc")


class IdentityProviderUnavailable(TransientFailure):
    """The provider's keys could not be fetched and none are cached (503)."""

    code = "identity_provider_unavailable"


@dataclass(frozen=True)
class VerifiedIdentity:
    issuer: str
    subject: str
    email: str
    name: str | None


def _refused(reason: str) -> NotAuthenticated:
    return NotAuthenticated(f"the identity token was refused: {reason}")


def _get_json(client: httpx.Client, url: str) -> dict[str, Any]:
    response = client.get(url, headers={"Accept": "application/json"})
    response.raise_for_status()
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise ValueError("document too large")
    document = response.json()
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


class IssuerKeys:
    """One issuer's signing keys by `kid`, with the fetch policy of the module docstring.

    A lock per issuer: concurrent sign-ins that need a fetch wait for one fetch, not make N."""

    def __init__(self, config: OidcIssuer) -> None:
        self.config = config
        self.fetches = 0
        self._lock = threading.Lock()
        self._keys: dict[str | None, dict[str, Any]] = {}
        self._jwks_url = config.jwks_url
        self._fetched_at: float | None = None  # monotonic, last successful fetch
        self._tried_at: float | None = None  # monotonic, last attempt (success or not)

    def key(self, kid: str | None, settings: Settings) -> dict[str, Any] | None:
        with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or now - self._fetched_at > settings.oidc_jwks_ttl_s
            may_fetch = (
                self._tried_at is None or now - self._tried_at >= settings.oidc_jwks_min_refresh_s
            )
            if (stale or self._lookup(kid) is None) and may_fetch:
                self._refresh(now)
            if self._fetched_at is None:
                raise IdentityProviderUnavailable(
                    "the identity provider's signing keys cannot be fetched; try again shortly"
                )
            return self._lookup(kid)

    def _lookup(self, kid: str | None) -> dict[str, Any] | None:
        if kid is None and len(self._keys) == 1:  # a provider with one key may omit `kid`
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        """Fetch the keys; on failure keep the ones we have (logged)."""
        self._tried_at = now
        self.fetches += 1
        try:
            with httpx.Client(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client:
                if self._jwks_url is None:
                    discovery = _get_json(
                        client, self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                    )
                    if discovery.get("issuer") != self.config.issuer:
                        raise ValueError("the discovery document names another issuer")
                    self._jwks_url = str(discovery["jwks_uri"])
                keys = _get_json(client, self._jwks_url)["keys"]
            self._keys = {
                k.get("kid"): k
                for k in keys
                if isinstance(k, dict) and k.get("kty") in ("RSA", "EC") and k.get("use") != "enc"
            }
            self._fetched_at = now
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("oidc.jwks_fetch_failed", issuer=self.config.issuer, error=str(exc))


class OidcVerifier:
    """The keys of every configured issuer, kept for the life of the API process."""

    def __init__(self) -> None:
        self._issuers: dict[OidcIssuer, IssuerKeys] = {}
        self._lock = threading.Lock()

    def keys_for(self, config: OidcIssuer) -> IssuerKeys:
        with self._lock:
            return self._issuers.setdefault(config, IssuerKeys(config))

    def verify(self, settings: Settings, token: str) -> VerifiedIdentity:
        """The identity a valid ID token asserts; `NotAuthenticated` naming what was wrong."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _refused("not a JWT") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _refused(f"algorithm {alg!r} is not accepted (RS256 or ES256)")
        config = next((c for c in settings.oidc_issuers if c.issuer == unverified.get("iss")), None)
        if config is None:
            raise _refused("the issuer is not configured")
        jwk = self.keys_for(config).key(header.get("kid"), settings)
        if jwk is None:
            raise _refused("the signing key is unknown")
        kty, crv = ALGORITHMS[alg]
        if jwk.get("kty") != kty or jwk.get("alg", alg) != alg or jwk.get("crv", crv) != crv:
            raise _refused("the signing key does not fit the algorithm")
        try:
            claims = jwt.decode(
                token,
                jwt.PyJWK(jwk, algorithm=alg).key,
                algorithms=[alg],
                audience=list(config.audience),
                issuer=config.issuer,
                leeway=settings.oidc_leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _refused("it has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise _refused("it was issued for another audience") from exc
        except jwt.PyJWTError as exc:
            raise _refused(str(exc) or "invalid") from exc
        return _identity(config, claims)


def _identity(config: OidcIssuer, claims: dict[str, Any]) -> VerifiedIdentity:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise _refused("it carries no email (add the `email` claim / scope)")
    verified = claims.get("email_verified", True)
    if verified not in (True, "true"):  # some providers send the string
        raise _refused("its email is not verified")
    name = claims.get("name")
    return VerifiedIdentity(
        issuer=config.issuer,
        subject=str(claims["sub"]),
        email=email.strip().lower(),
        name=name[:200] if isinstance(name, str) and name else None,
    )
