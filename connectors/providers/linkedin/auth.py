"""LinkedIn OAuth tokens for the `linkedin` connector: renewed before they expire and on a 401.

LinkedIn access tokens live 60 days and programmatic refresh tokens 365 days; a refresh
(`POST https://www.linkedin.com/oauth/v2/accessToken`, form `grant_type=refresh_token`,
`refresh_token`, `client_id`, `client_secret`) mints a new access token (60 days again) while the
refresh token keeps its original expiry. A data source that stores a refresh token with its
app's client id and secret therefore keeps syncing for a year without anyone pasting a token.

`TokenKeeper` holds the current token, refreshes it when it is within `REFRESH_MARGIN_S` of its
known expiry or when LinkedIn answers 401, and hands the new values to `save` (the job's
`RunContext.save_config`), which stores them encrypted on the data source: connectors never touch
the database. A refresh LinkedIn refuses (revoked or expired refresh token) is an `AuthError`
saying what to do. Tokens and the client secret are masked in every message and never logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from connectors.base import JobLogger
from connectors.errors import AuthError, ConnectorError, TransientError
from connectors.kit import http

TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"
#: refresh a token this close to its expiry (a job may run, or wait for the daily limit, for hours)
REFRESH_MARGIN_S = 86_400

SaveConfig = Callable[[Mapping[str, str | int | None]], None]


class TokenConfig(Protocol):
    """The `LinkedInConfig` fields this module reads."""

    access_token: SecretStr
    refresh_token: SecretStr | None
    client_id: str | None
    client_secret: SecretStr | None
    access_token_expires_at: int | None
    refresh_token_expires_at: int | None
    token_url: str


class TokenKeeper:
    def __init__(
        self,
        config: TokenConfig,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        save: SaveConfig | None = None,
        log: JobLogger | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._transport = transport
        self._save = save
        self._log = log
        self.token = config.access_token.get_secret_value()
        self.expires_at = config.access_token_expires_at
        self.refreshes = 0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value to mask in messages about calls made with these credentials."""
        c = self._config
        values = [self.token, c.access_token.get_secret_value()]
        values += [s.get_secret_value() for s in (c.refresh_token, c.client_secret) if s]
        return tuple(v for v in values if v)

    @property
    def can_refresh(self) -> bool:
        c = self._config
        return bool(c.refresh_token and c.client_id and c.client_secret)

    def due(self) -> bool:
        """The known expiry is near: refresh before LinkedIn starts answering 401."""
        if self.expires_at is None or not self.can_refresh:
            return False
        return self._clock() >= self.expires_at - REFRESH_MARGIN_S

    def refresh(self, reason: str) -> str:
        """A new access token from the refresh token; saved through `save`; `AuthError` if
        LinkedIn refuses it or no refresh token is configured."""
        c = self._config
        if not self.can_refresh or c.refresh_token is None or c.client_secret is None:
            raise AuthError(
                "LinkedIn refused the access token (expired or revoked) and the data source has "
                "no refresh_token, client_id and client_secret to renew it: authorise Dashin "
                "again and update the data source's access_token"
            )
        now = self._clock()
        if c.refresh_token_expires_at is not None and now >= c.refresh_token_expires_at:
            raise AuthError(
                f"the LinkedIn refresh token expired on {_date(c.refresh_token_expires_at)} "
                "(refresh tokens live 365 days): authorise Dashin again and update the data "
                "source's access_token and refresh_token"
            )
        body = self._post(c)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransientError("LinkedIn's token endpoint answered without an access_token")
        self.token = token
        self.refreshes += 1
        expires_in = body.get("expires_in")
        self.expires_at = int(now + expires_in) if isinstance(expires_in, int) else None
        changes: dict[str, str | int | None] = {
            "access_token": token,
            "access_token_expires_at": self.expires_at,
        }
        new_refresh = body.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh != c.refresh_token.get_secret_value():
            changes["refresh_token"] = new_refresh
        refresh_ttl = body.get("refresh_token_expires_in")
        if isinstance(refresh_ttl, int):
            changes["refresh_token_expires_at"] = int(now + refresh_ttl)
        if self._save is not None:
            self._save(changes)
        if self._log is not None:
            self._log.info(
                "linkedin.token_refreshed",
                message=f"LinkedIn access token renewed ({reason}); valid until "
                f"{_date(self.expires_at) if self.expires_at else 'unknown'}",
                reason=reason,
                expires_at=self.expires_at,
            )
        return token

    def _post(self, c: TokenConfig) -> dict[str, Any]:
        assert c.refresh_token is not None and c.client_secret is not None
        form = {
            "grant_type": "refresh_token",
            "refresh_token": c.refresh_token.get_secret_value(),
            "client_id": c.client_id or "",
            "client_secret": c.client_secret.get_secret_value(),
        }
        secrets = (*self.secrets, *form.values())
        with http.make_client(secrets=secrets, transport=self._transport) as client:
            try:
                # Sending a refresh twice only mints two tokens: safe to retry on 5xx.
                response = http.request(
                    client,
                    "POST",
                    c.token_url,
                    data=form,
                    headers={"Accept": "application/json"},
                    secrets=secrets,
                    idempotent=True,
                    max_attempts=3,
                )
            except AuthError as exc:
                raise _refused(str(exc)) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        if response.status_code == 400:  # OAuth errors: invalid_request, invalid_grant, ...
            error, description = body.get("error", 400), body.get("error_description", "")
            raise _refused(f"{error}: {description}".strip(": "))
        if not response.is_success:
            raise TransientError(f"LinkedIn's token endpoint answered {response.status_code}")
        return body


def _refused(detail: str) -> ConnectorError:
    return AuthError(
        f"LinkedIn refused to refresh the access token ({detail}): the refresh token was revoked "
        "or has expired; authorise Dashin again and update the data source's access_token and "
        "refresh_token"
    )


def _date(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")
