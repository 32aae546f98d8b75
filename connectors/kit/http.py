"""The one HTTP path every provider connector takes: client factory, retries, throttling.

Connectors differ in URLs and payloads, not in how they survive a flaky provider, so that lives
here once. `make_client` builds an `httpx.Client` whose connections go through the SSRF guard
(`connectors.kit.ssrf`). `request` sends one logical request:

- the shared rate limiter is acquired before every attempt (throttled re-sends included), and
  its grant settled when the answer is in (`connectors.kit.ratelimit.settling`);
- failures are retried by tenacity with exponential backoff and full jitter (or the server's
  `Retry-After` when longer), at most `max_attempts` attempts, then `TransientError` — but only
  when sending again cannot make the provider act twice (a POST may spend credits):
  - always: connect errors and connect/pool timeouts (nothing was sent), 408 (the server never
    read the whole request) and 503 with `Retry-After` (the provider says it did not act);
  - idempotent requests only: read/write timeouts, a connection reset or closed after sending,
    500/502/503/504. Idempotent means GET/HEAD/OPTIONS, or `idempotent=True` from a connector
    whose POST only reads (a search). Otherwise such a failure raises `TransientError` at once;
- 429 is throttling, not failure: it never spends an attempt. Its wait comes from `Retry-After`
  (seconds or HTTP date), `X-RateLimit-Reset` (epoch or delta seconds) or an Apollo-style
  `x-<window>-requests-left: 0`; throttling is bounded by total waiting time instead;
- a single provider-mandated wait longer than `park_after_s` (or throttling beyond
  `max_throttle_s` in total) raises `RateLimited(retry_after)`: the runner parks the job with
  `resume_at` rather than holding a worker thread for minutes;
- 401 → `AuthError`, 403 → `ForbiddenError`; every other response goes back to the connector;
- the memory guard: an answer is read as a stream and refused with `ResponseTooLarge` once its
  declared or decoded size passes `max_bytes` (`DASHIN_MAX_RESPONSE_BYTES`, 32 MiB): a provider
  (or a tenant's `generic_api` URL) that sends gigabytes, or a gzip bomb, fails the job instead
  of the worker process. Decoded bytes are counted because that is what a connector parses;
  JSON takes several times its size in Python objects, so the cap sits far above real pages
  (100 Apollo people are about 0.5 MB) and far below a worker's memory;
- every wait goes through `ctx.wait` (heartbeats; returns early when the job stops, which raises
  `RateLimited` so nothing more is sent), or `time.sleep` without a context.

Secrets never reach a log line or an error message: the client's and the call's `secrets`,
credential-like header and query values (also those an `httpx.Auth` added) are masked.
"""

from __future__ import annotations

import base64
import random
import re
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

import httpx
import structlog
import tenacity

from connectors.base import JobLogger, RateLimiter, RunContext
from connectors.errors import (
    AuthError,
    ConfigError,
    ForbiddenError,
    RateLimited,
    ResponseTooLarge,
    TransientError,
)
from connectors.kit.ratelimit import limits_from_headers, settling
from connectors.kit.ssrf import GuardedTransport, IPNetwork, check_scheme
from runtime.settings import get_settings

__all__ = ["DEFAULT_MAX_THROTTLE_S", "Redactor", "make_client", "request", "server_wait_s"]

RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})
#: the request never left this process: sending it again is always safe
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: the request may have reached the provider: only an idempotent one is sent again
MAYBE_SENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
#: RFC 9110 safe methods; anything else is idempotent only when the caller says so
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: total 429 waiting one `request` call may do before it parks the job instead
DEFAULT_MAX_THROTTLE_S = 900.0
_MAX_THROTTLES = 50  # 429s answered with "retry now" cannot loop forever
_THROTTLE_BACKOFF = (1.0, 60.0)  # base, cap for 429s that say nothing about when
_SHORT_DETAIL = 300

_client_secrets: weakref.WeakKeyDictionary[httpx.Client, tuple[str, ...]] = (
    weakref.WeakKeyDictionary()
)
_fallback_log: JobLogger = structlog.get_logger("connectors.kit.http")


def make_client(
    base_url: str = "",
    *,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
    timeout: float = 30.0,
    connect_timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    secrets: Iterable[str] = (),
    ssrf_allow: Sequence[IPNetwork] | None = None,
) -> httpx.Client:
    """An `httpx.Client` for one provider; `request(client, ...)` is how connectors use it.

    Without `transport`, every connection is SSRF-guarded against `ssrf_allow` (default: the
    `DASHIN_SSRF_ALLOW` setting). A given `transport` (MockTransport, an in-process app) decides
    itself where bytes go and is used as is. `secrets` are masked in every message about calls
    made with this client.
    """
    if base_url:
        check_scheme(httpx.URL(base_url))
    if transport is None:
        if ssrf_allow is None:
            ssrf_allow = get_settings().ssrf_allow
        transport = GuardedTransport(ssrf_allow)
    client = httpx.Client(
        base_url=base_url,
        headers=headers,
        auth=auth,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        transport=transport,
        trust_env=False,
    )
    _client_secrets[client] = tuple(secrets)
    return client


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    ctx: RunContext | None = None,
    limiter: RateLimiter | None = None,
    max_attempts: int = 6,
    park_after_s: float | None = None,
    secrets: Iterable[str] = (),
    max_throttle_s: float = DEFAULT_MAX_THROTTLE_S,
    idempotent: bool | None = None,
    max_bytes: int | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one logical request with retries and throttling; see the module docstring.

    `idempotent`: may the request be sent twice (a read timeout, a 5xx)? Default: only for
    GET/HEAD/OPTIONS. A connector passes True for a POST that only reads (a search), never for
    one that spends credits or changes something.
    `max_bytes`: the memory guard (default `DASHIN_MAX_RESPONSE_BYTES`).
    `kwargs` go to `client.stream` (`json`, `params`, `headers`, `content`, ...).
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    if park_after_s is None:
        park_after_s = get_settings().rate_limit_park_s
    if max_bytes is None:
        max_bytes = get_settings().max_response_bytes
    redactor = Redactor([*_client_secrets.get(client, ()), *secrets])
    redactor.add_headers(client.headers)
    redactor.add_headers(httpx.Headers(kwargs.get("headers")))
    target = client.build_request(method, url, params=kwargs.get("params")).url
    redactor.add_params(target.params)
    call = _Call(
        client=client,
        method=method.upper(),
        url=url,
        kwargs=kwargs,
        ctx=ctx,
        limiter=limiter,
        redactor=redactor,
        shown_url=redactor.url(target),
        park_after_s=park_after_s,
        max_throttle_s=max_throttle_s,
        idempotent=method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent,
        max_bytes=max_bytes,
    )
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max_attempts),
        wait=call.failure_wait,
        retry=tenacity.retry_if_exception_type(_Failure),
        sleep=call.pause,
        before_sleep=call.log_retry,
        reraise=True,
    )
    try:
        return retrying(call.attempt)
    except _Failure as exc:
        raise TransientError(
            f"{call.method} {call.shown_url} failed after {max_attempts} attempts: {exc.reason}"
        ) from exc.__cause__


class _Failure(Exception):
    """An attempt that failed in a way worth retrying (internal to `request`)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


_backoff = tenacity.wait_random_exponential(multiplier=0.5, max=30.0)


@dataclass
class _Call:
    """State of one `request` call: throttle accounting, redaction, logging, waiting."""

    client: httpx.Client
    method: str
    url: str
    kwargs: dict[str, Any]
    ctx: RunContext | None
    limiter: RateLimiter | None
    redactor: Redactor
    shown_url: str
    park_after_s: float
    max_throttle_s: float
    idempotent: bool
    max_bytes: int
    throttled_s: float = 0.0
    throttles: int = 0

    @property
    def log(self) -> JobLogger:
        return self.ctx.log if self.ctx is not None else _fallback_log

    def attempt(self) -> httpx.Response:
        while True:
            try:
                response = self.send()
            except httpx.UnsupportedProtocol as exc:
                raise ConfigError(self.redactor.text(f"{self.shown_url}: {exc}")) from None
            except NOT_SENT_ERRORS as exc:
                raise _Failure(self.redactor.text(f"{type(exc).__name__}: {exc}")) from exc
            except MAYBE_SENT_ERRORS as exc:
                reason = self.redactor.text(f"{type(exc).__name__}: {exc}")
                if self.idempotent:
                    raise _Failure(reason) from exc
                raise self.not_repeated(reason) from exc
            self.redactor.add_headers(response.request.headers)  # what an httpx.Auth added
            status = response.status_code
            if status == 429:
                self.throttle(response)
                continue
            if status in (401, 403):
                raise self.denied(response)
            if status in RETRY_STATUSES:
                if not (self.idempotent or _not_acted_on(response)):
                    raise self.not_repeated(f"status {status}")
                hint = server_wait_s(response.headers)
                if hint is not None and hint > self.park_after_s:
                    raise self.park(hint, status)
                raise _Failure(f"last status {status}", hint)
            return response

    def send(self) -> httpx.Response:
        """One request in one limiter slot, settled once the answer (or the error) is in: the
        slot then frees a window after the provider saw the request (`connectors.kit.ratelimit`)."""
        with settling():
            if self.limiter is not None:
                self.limiter.acquire()
            with self.client.stream(self.method, self.url, **self.kwargs) as response:
                return self.read_capped(response)

    def read_capped(self, response: httpx.Response) -> httpx.Response:
        """The answer with its body read, at most `max_bytes` of it (decoded), else
        `ResponseTooLarge` (the stream is closed unread past the cap)."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise self.too_large(f" (it declares {int(declared)} bytes)")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise self.too_large("")
            chunks.append(chunk)
        # A new response carrying the decoded body (httpx offers no public way to hand a
        # streamed response the bytes read from it); its encoding header would decode twice.
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() != "content-encoding"
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=response.request,
            extensions=response.extensions,
            history=response.history,
            default_encoding=response.default_encoding,
        )

    def too_large(self, declared: str) -> ResponseTooLarge:
        message = (
            f"{self.method} {self.shown_url}: the answer is larger than the "
            f"{_mib(self.max_bytes)} one page may take{declared} (DASHIN_MAX_RESPONSE_BYTES); "
            "ask for smaller pages"
        )
        return ResponseTooLarge(message)

    def throttle(self, response: httpx.Response) -> None:
        """Wait out a 429 without spending an attempt, or park when the wait is too long."""
        self.throttles += 1
        hint = server_wait_s(response.headers)
        base, cap = _THROTTLE_BACKOFF
        wait = hint if hint is not None else random.uniform(0, min(cap, base * 2**self.throttles))
        over_budget = self.throttled_s + wait > self.max_throttle_s
        if wait > self.park_after_s or over_budget or self.throttles > _MAX_THROTTLES:
            raise self.park(wait, 429)
        self.log.info(
            "http.throttled",
            method=self.method,
            url=self.shown_url,
            status=429,
            throttles=self.throttles,
            wait=round(wait, 3),
        )
        self.pause(wait)
        self.throttled_s += wait

    def park(self, wait: float, status: int) -> RateLimited:
        self.log.warning(
            "http.rate_limited", method=self.method, url=self.shown_url, status=status, wait=wait
        )
        return RateLimited(
            wait, f"{self.method} {self.shown_url}: status {status}, retry after {wait:.1f}s"
        )

    def not_repeated(self, reason: str) -> TransientError:
        """A failure after the provider may have acted: sending again could act twice."""
        self.log.warning("http.not_retried", method=self.method, url=self.shown_url, reason=reason)
        return TransientError(
            f"{self.method} {self.shown_url} failed: {reason}; not sent again because the "
            f"provider may have processed it (the request is not idempotent)"
        )

    def denied(self, response: httpx.Response) -> AuthError | ForbiddenError:
        detail = _provider_detail(response)
        message = f"{self.method} {self.shown_url} answered {response.status_code}"
        if detail:
            message += f": {detail}"
        error = AuthError if response.status_code == 401 else ForbiddenError
        return error(self.redactor.text(message))

    def failure_wait(self, state: tenacity.RetryCallState) -> float:
        backoff = _backoff(state)
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Failure) and exc.retry_after is not None:
            return max(backoff, exc.retry_after)
        return backoff

    def log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        self.log.warning(
            "http.retry",
            method=self.method,
            url=self.shown_url,
            reason=exc.reason if isinstance(exc, _Failure) else repr(exc),
            attempt=state.attempt_number,
            wait=round(state.upcoming_sleep, 3),
        )

    def pause(self, seconds: float) -> None:
        if self.ctx is None:
            time.sleep(seconds)
            return
        started = time.monotonic()
        self.ctx.wait(seconds)
        if self.ctx.should_stop():
            left = max(0.0, seconds - (time.monotonic() - started))
            raise RateLimited(left, f"{self.method} {self.shown_url}: job stopping during a wait")


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's body when it is a JSON object; None for anything else (a proxy's HTML
    page, a truncated body), which callers ask for again or refuse."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB" if size >= 1 << 20 else f"{size} bytes"


def _not_acted_on(response: httpx.Response) -> bool:
    """The status says the request was not processed: 408, or 503 with `Retry-After`."""
    status = response.status_code
    return status == 408 or (status == 503 and "retry-after" in response.headers)


def _provider_detail(response: httpx.Response) -> str:
    """The provider's error text when it is short: a JSON message/error field or plain text."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        text = response.text
    else:
        text = _message_in(body) or ""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _SHORT_DETAIL else ""


def _message_in(body: object) -> str | None:
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail", "error_message", "code"):
            found = _message_in(body.get(key))
            if found:
                return found
    return None


def server_wait_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from the headers providers use; None if none say.

    The longest of: `Retry-After` (delta seconds or HTTP date), `X-RateLimit-Reset` /
    `RateLimit-Reset` when the remaining count is 0 or absent (epoch seconds, epoch ms, or a
    delta), and Apollo-style windows with `x-<window>-requests-left: 0`, which end at the next
    UTC minute/hour/day boundary (*choice*: Apollo does not say when its windows start).
    """
    now = time.time() if now is None else now
    h = httpx.Headers(headers)
    waits: list[float] = []
    if (retry_after := h.get("retry-after")) is not None:
        waits.extend(_retry_after(retry_after, now))
    remaining = h.get("x-ratelimit-remaining", h.get("ratelimit-remaining"))
    reset = h.get("x-ratelimit-reset", h.get("ratelimit-reset"))
    if reset is not None and (remaining is None or remaining.strip() == "0"):
        waits.extend(_reset(reset, now))
    for window in limits_from_headers(h):
        if window.remaining == 0:
            waits.append(window.period_s - now % window.period_s)
    return max(0.0, *waits) if waits else None


def _retry_after(value: str, now: float) -> list[float]:
    try:
        return [float(value)]
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return []
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return [when.timestamp() - now]


def _reset(value: str, now: float) -> list[float]:
    try:
        number = float(value)
    except ValueError:
        return []
    if number > 1e12:  # epoch milliseconds
        return [number / 1000 - now]
    if number > 1e9:  # epoch seconds
        return [number - now]
    return [number]


_SENSITIVE = re.compile(
    r"auth|token|key|secret|passw|session|cookie|signature|credential|sig$", re.IGNORECASE
)
_MIN_SECRET = 3  # shorter values would mask ordinary text and are no secret anyway


class Redactor:
    """Masks known secret values (raw and URL-encoded) and credential-like query values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            value = str(value).strip()
            if len(value) >= _MIN_SECRET:
                self._secrets.update({value, quote(value, safe=""), quote_plus(value)})

    def add_headers(self, headers: httpx.Headers) -> None:
        for name, value in headers.multi_items():
            if not _SENSITIVE.search(name):
                continue
            scheme, _, credentials = value.partition(" ")
            self.add([value, credentials])
            if scheme.lower() == "basic" and credentials:
                try:
                    decoded = base64.b64decode(credentials, validate=True).decode()
                except (ValueError, UnicodeDecodeError):
                    continue
                self.add([decoded, decoded.partition(":")[2]])

    def add_params(self, params: httpx.QueryParams) -> None:
        self.add(value for name, value in params.multi_items() if _SENSITIVE.search(name))

    def text(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def url(self, url: httpx.URL | str) -> str:
        parts = urlsplit(str(url))
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rpartition("@")[2]
        query = "&".join(_mask_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
        return self.text(urlunsplit(parts._replace(netloc=netloc, query=query)))


def _mask_pair(pair: str) -> str:
    name, sep, _ = pair.partition("=")
    return f"{name}=***" if sep and _SENSITIVE.search(unquote_plus(name)) else pair
