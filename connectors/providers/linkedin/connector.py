"""`linkedin`: leads from LinkedIn Lead Gen Forms through the Lead Sync API.

Lead Sync is the only LinkedIn API that legitimately hands person-level leads to a third party.
Responses are kept 365 days, so a data source back-fills once (`submittedAtTimeRange` from now minus
the back-fill window) and then syncs incrementally: every page carries the latest `submittedAt`
seen as the data source's new `sync_state`, and the next job starts just after it.

Paging is by offset inside a time window whose end is fixed when a job starts, so leads submitted
while a job runs never shift the offsets; and each page rebases the window start on the newest
`submittedAt` read, so leads expiring during a long back-fill do not shift them either. The
checkpoint `{"window": [start_ms, end_ms], "offset", "fetched", "latest", "done"}` therefore
resumes exactly after its page.

Elements carry answers by `questionId` and name their form by `versionedLeadGenFormUrn`; the
questions come from `GET /rest/leadForms/{id}`, fetched once per form per job
(`linkedin_forms`). The access token is renewed with the data source's refresh token before it
expires and on a 401 (`linkedin_auth`), and the new one is saved through the job's context.

The query string is built by hand: Rest.li 2.0 wants parentheses, colons and commas as they are
and the URNs inside them percent-encoded, which httpx's `params=` would re-encode.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr, model_validator

from connectors.base import (
    Checkpoint,
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorParams,
    Page,
    Progress,
    RunContext,
)
from connectors.errors import AuthError, ConfigError, ConnectorError, RateLimited, TransientError
from connectors.kit import http
from connectors.providers.linkedin.auth import TOKEN_URL, TokenKeeper
from connectors.providers.linkedin.forms import FormCache
from connectors.providers.linkedin.mapping import PREDEFINED_FIELDS as PREDEFINED_FIELDS
from connectors.providers.linkedin.mapping import lead_from_element as lead_from_element
from connectors.providers.linkedin.mapping import leads_from_elements

_DAY_MS = 86_400_000
_URN = re.compile(r"^urn:li:([A-Za-z]+):\S+$")
_MALFORMED_RETRIES = 3
_EMPTY_RETRIES = 3


class LinkedInConfig(ConnectorConfig):
    access_token: SecretStr = Field(description="OAuth2 token with r_marketing_leadgen_automation")
    access_token_expires_at: int | None = Field(
        None, description="epoch seconds; the token is renewed a day before (kept up to date)"
    )
    refresh_token: SecretStr | None = Field(
        None, description="programmatic refresh token (365 days); renews the access token"
    )
    refresh_token_expires_at: int | None = Field(None, description="epoch seconds")
    client_id: str | None = Field(None, description="the LinkedIn app's client id (for refresh)")
    client_secret: SecretStr | None = Field(None, description="the app's client secret")
    token_url: str = Field(TOKEN_URL, description="OAuth token endpoint (emulators override it)")
    sponsored_account_id: str | None = Field(None, pattern=r"^\d+$")
    owner_urn: str | None = Field(None, description="e.g. urn:li:organization:123 (instead of id)")
    lead_type: Literal["SPONSORED", "EVENT", "COMPANY", "ORGANIZATION_PRODUCT"] = "SPONSORED"
    linkedin_version: str = Field("202506", pattern=r"^\d{6}(\.\d{2})?$")
    base_url: str = "https://api.linkedin.com"
    page_size: int = Field(100, ge=1, le=1000)
    backfill_days: int = Field(365, ge=1, le=365)
    test_leads: Literal["skip", "tag"] = Field(
        "skip", description="skip test leads, or keep them with raw.test_lead = true"
    )
    requests_per_minute: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _one_owner(self) -> LinkedInConfig:
        if (self.sponsored_account_id is None) == (self.owner_urn is None):
            raise ValueError("set exactly one of sponsored_account_id and owner_urn")
        if self.owner_urn is not None and not _URN.match(self.owner_urn):
            raise ValueError("owner_urn must look like urn:li:<type>:<id>")
        return self

    @property
    def owner(self) -> str:
        return self.owner_urn or f"urn:li:sponsoredAccount:{self.sponsored_account_id}"


class LinkedInParams(ConnectorParams):
    #: ignore the data source's sync_state and back-fill the whole window again
    full_backfill: bool = False


def restli_query(
    config: LinkedInConfig, start_ms: int, end_ms: int, offset: int, count: int
) -> str:
    """The query string for `GET /rest/leadFormResponses`, encoded the Rest.li 2.0 way."""
    match = _URN.match(config.owner)
    owner_key = match.group(1) if match else "sponsoredAccount"
    return "&".join(
        (
            "q=owner",
            f"owner=({owner_key}:{quote(config.owner, safe='')})",
            f"leadType=(leadType:{config.lead_type})",
            f"submittedAtTimeRange=(start:{start_ms},end:{end_ms})",
            f"start={offset}",
            f"count={count}",
        )
    )


def seconds_until_utc_midnight(now: datetime) -> float:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


class LinkedInConnector(Connector):
    type = "linkedin"
    Config = LinkedInConfig
    Params = LinkedInParams
    queue = "linkedin"

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._clock = clock  # seams for tests: a moved clock, an in-process transport
        self._transport = transport

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def check(self, config: LinkedInConfig) -> CheckResult:
        now = self._now_ms()
        keeper = self._keeper(config, None)  # a token renewed here is used, not saved
        try:
            with self._client(config) as client:
                body = self._fetch(
                    client, keeper, config, None, now - config.backfill_days * _DAY_MS, now, 0, 5
                )
                elements = [e for e in body.get("elements") or [] if isinstance(e, dict)]
                forms = self._forms(client, keeper, config, None).forms_for(elements)
        except ConnectorError as exc:
            return CheckResult(ok=False, reason=exc.reason, message=str(exc))  # type: ignore[arg-type]
        sample, _ = leads_from_elements(elements, first=1, test_leads="tag", forms=forms)
        total = (body.get("paging") or {}).get("total")
        return CheckResult(
            ok=True, message=f"connected; {total} lead(s) in the window", sample=sample[:5]
        )

    def pages(
        self,
        config: LinkedInConfig,
        params: LinkedInParams,
        checkpoint: Checkpoint,
        ctx: RunContext,
    ) -> Iterator[Page]:
        state = _start_state(config, params, checkpoint, ctx.sync_state, self._now_ms())
        if state.get("done"):
            return
        limiter = ctx.rate_limiter("linkedin", config.requests_per_minute, 60.0)
        keeper = self._keeper(config, ctx)
        with self._client(config) as client:
            forms = self._forms(client, keeper, config, ctx, limiter)
            start_ms, end_ms = state["window"]
            offset, latest = int(state["offset"]), state.get("latest")
            fetched = int(state.get("fetched", 0))
            empty_retries = 0
            while not ctx.should_stop():
                body = self._fetch(
                    client, keeper, config, ctx, start_ms, end_ms, offset, config.page_size, limiter
                )
                elements = [e for e in body.get("elements") or [] if isinstance(e, dict)]
                total = (body.get("paging") or {}).get("total")
                total = total if isinstance(total, int) else None
                if not elements and total is not None and offset < total:
                    # An empty page although the total promises more: ask again, a few times.
                    empty_retries += 1
                    ctx.log.warning("linkedin.empty_page", offset=offset, total=total)
                    if empty_retries > _EMPTY_RETRIES:
                        raise TransientError(
                            f"LinkedIn keeps answering an empty page at offset {offset} "
                            f"although it reports {total} lead(s)"
                        )
                    continue
                empty_retries = 0
                for element in elements:
                    latest = _later(latest, element.get("submittedAt"))
                records, errors = leads_from_elements(
                    elements,
                    first=offset + 1,
                    test_leads=config.test_leads,
                    forms=forms.forms_for(elements),
                )
                # A short (truncated) page is fine: the next one starts right after it.
                left = None if total is None else max(0, total - offset - len(elements))
                done = left == 0 if left is not None else len(elements) < config.page_size
                start_ms, offset = _advance(start_ms, offset, elements)
                fetched += len(elements)
                checkpoint = {"window": [start_ms, end_ms], "offset": offset}
                yield Page(
                    records=records,
                    errors=errors,
                    checkpoint={**checkpoint, "fetched": fetched, "latest": latest, "done": done},
                    progress=Progress(fetched, None if left is None else fetched + left),
                    sync_state=_sync_state(latest, ctx.sync_state),
                )
                if done:
                    return

    def _keeper(self, config: LinkedInConfig, ctx: RunContext | None) -> TokenKeeper:
        return TokenKeeper(
            config,
            clock=self._clock,
            transport=self._transport,
            save=ctx.save_config if ctx is not None else None,
            log=ctx.log if ctx is not None else None,
        )

    def _client(self, config: LinkedInConfig) -> httpx.Client:
        """The API client; the bearer token goes on each request (it may be renewed mid-job)."""
        client = http.make_client(
            config.base_url,
            headers={
                "LinkedIn-Version": config.linkedin_version,
                "X-Restli-Protocol-Version": "2.0.0",
                "Accept": "application/json",
            },
            transport=self._transport,
        )
        client.event_hooks["response"] = [_park_on_daily_limit]
        return client

    def _get(
        self,
        client: httpx.Client,
        keeper: TokenKeeper,
        url: str,
        ctx: RunContext | None,
        limiter: Any = None,
    ) -> httpx.Response:
        """GET with the current token: renewed first when it is about to expire, and once more
        when LinkedIn answers 401 (expired early, or the stored expiry was unknown)."""
        if keeper.due():
            keeper.refresh("the access token expires within a day")
        renewed = False
        while True:
            try:
                return http.request(
                    client,
                    "GET",
                    url,
                    ctx=ctx,
                    limiter=limiter,
                    headers={"Authorization": f"Bearer {keeper.token}"},
                    secrets=keeper.secrets,
                    max_attempts=6 if ctx is not None else 2,
                )
            except AuthError as exc:
                if renewed or not keeper.can_refresh:
                    raise AuthError(
                        f"{exc.message}. LinkedIn refused the access token (expired or revoked): "
                        "authorise Dashin again, or store a refresh_token with client_id and "
                        "client_secret so the token is renewed automatically"
                    ) from None
                keeper.refresh("LinkedIn answered 401")
                renewed = True

    def _forms(
        self,
        client: httpx.Client,
        keeper: TokenKeeper,
        config: LinkedInConfig,
        ctx: RunContext | None,
        limiter: Any = None,
    ) -> FormCache:
        def fetch(form_id: str) -> Any | None:
            response = self._get(client, keeper, f"/rest/leadForms/{form_id}", ctx, limiter)
            if response.status_code == 404:
                if ctx is not None:
                    ctx.log.warning("linkedin.form_not_found", form_id=form_id)
                return None
            _raise_for_linkedin(response, config)
            try:
                return response.json()
            except ValueError:
                return None

        return FormCache(fetch)

    def _fetch(
        self,
        client: httpx.Client,
        keeper: TokenKeeper,
        config: LinkedInConfig,
        ctx: RunContext | None,
        start_ms: int,
        end_ms: int,
        offset: int,
        count: int,
        limiter: Any = None,
    ) -> dict[str, Any]:
        url = "/rest/leadFormResponses?" + restli_query(config, start_ms, end_ms, offset, count)
        for attempt in range(_MALFORMED_RETRIES):
            response = self._get(client, keeper, url, ctx, limiter)
            _raise_for_linkedin(response, config)
            body = http.json_object(response)
            if body is not None:
                return body
            if ctx is not None:
                ctx.log.warning("linkedin.malformed_body", offset=offset, attempt=attempt + 1)
        raise TransientError(f"LinkedIn answered {_MALFORMED_RETRIES} times with a malformed body")


def _park_on_daily_limit(response: httpx.Response) -> None:
    """LinkedIn's daily limits answer 429 without any header and reset at midnight UTC: park the
    job until then instead of letting the HTTP layer back off blindly (runs as an httpx hook)."""
    if response.status_code == 429 and http.server_wait_s(response.headers) is None:
        wait = seconds_until_utc_midnight(datetime.now(UTC))
        raise RateLimited(
            wait, f"LinkedIn daily limit reached; it resets at midnight UTC ({wait:.0f}s)"
        )


def _raise_for_linkedin(response: httpx.Response, config: LinkedInConfig) -> None:
    """Turn LinkedIn's error answers (not handled by the HTTP layer) into typed errors."""
    if response.is_success:
        return
    try:
        err = response.json()
    except ValueError:
        err = {}
    err = err if isinstance(err, dict) else {}
    code, message = err.get("code"), err.get("message") or response.text[:200]
    if response.status_code == 426 or code == "NONEXISTENT_VERSION":
        raise ConfigError(
            f"LinkedIn-Version {config.linkedin_version} is not an active API version "
            f"({code or response.status_code}): set linkedin_version to a current YYYYMM version"
        )
    if response.status_code == 429:
        wait = seconds_until_utc_midnight(datetime.now(UTC))
        raise RateLimited(
            wait, f"LinkedIn daily limit reached; resets at midnight UTC (in {wait:.0f}s)"
        )
    if response.status_code in (400, 404, 422):
        raise ConfigError(
            f"LinkedIn refused the request ({response.status_code} {code}): {message}"
        )
    raise TransientError(f"LinkedIn answered {response.status_code} {code or ''}: {message}")


def _start_state(
    config: LinkedInConfig,
    params: LinkedInParams,
    checkpoint: dict[str, Any] | None,
    sync_state: dict[str, Any],
    now_ms: int,
) -> dict[str, Any]:
    if checkpoint and "window" in checkpoint:
        return checkpoint
    start_ms = now_ms - config.backfill_days * _DAY_MS
    since = sync_state.get("submitted_at_ms")
    if isinstance(since, int) and not params.full_backfill:
        start_ms = max(start_ms, since + 1)
    return {
        "window": [start_ms, now_ms],
        "offset": 0,
        "latest": since if isinstance(since, int) else None,
    }


def _advance(start_ms: int, offset: int, elements: list[dict[str, Any]]) -> tuple[int, int]:
    """The (window start, offset) of the next page, rebased on the last `submittedAt` seen.

    Leads older than 365 days disappear while a back-fill runs (or waits for the daily limit to
    reset), which would shift plain offsets and skip leads. Pages come sorted by `submittedAt`,
    so the next page starts at the newest time seen, past the leads already read at that time.
    Should a page not be in order, plain offsets in the unchanged window are kept.
    """
    times = [t for e in elements if isinstance(t := e.get("submittedAt"), int) and t >= start_ms]
    if not times or len(times) != len(elements) or times != sorted(times):
        return start_ms, offset + len(elements)
    newest = times[-1]
    if newest == start_ms:
        return start_ms, offset + len(elements)
    return newest, times.count(newest)


def _later(latest: int | None, submitted: Any) -> int | None:
    if isinstance(submitted, int) and (latest is None or submitted > latest):
        return submitted
    return latest


def _sync_state(latest: int | None, previous: dict[str, Any]) -> dict[str, Any] | None:
    if latest is None:
        return dict(previous) or None
    return {**previous, "submitted_at_ms": latest}
