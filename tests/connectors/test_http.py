"""The shared HTTP layer against a real HTTP server on 127.0.0.1: retries, throttling, errors.

Waits are recorded by a context whose `wait` returns at once, so a test that honours a
ten-minute `Retry-After` still runs in milliseconds; the assertions are on what was asked.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from typing import Any

import httpx
import pytest

from connectors.errors import (
    AuthError,
    ConfigError,
    ForbiddenError,
    RateLimited,
    TransientError,
)
from connectors.kit import http
from connectors.kit.testing import LocalRunContext

LOCAL = [ip_network("127.0.0.1/32")]


# --- a tiny scripted HTTP server ------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    #: hold the response until the server stops (the client's read timeout fires first)
    hang: bool = False
    #: close the connection after reading the request, without any response
    drop: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived


class LocalServer:
    """Threaded HTTP/1.1 server: answers scripted replies per path (else 200), records requests."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._replies: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._replies.setdefault(path, deque()).extend(replies)

    def always(self, path: str, reply: Reply, times: int = 100) -> None:
        self.script(path, *([reply] * times))

    def seen(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path.split("?")[0] == path]

    def wait_seen(self, path: str, count: int, timeout: float = 10.0) -> list[Seen]:
        """The requests to `path` once `count` have arrived: a client may give up on a request
        (read timeout) before a loaded machine has scheduled the server's handler."""
        with self._arrived:
            self._arrived.wait_for(
                lambda: sum(r.path.split("?")[0] == path for r in self.requests) >= count,
                timeout=timeout,
            )
        return self.seen(path)

    def take(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            self._arrived.notify_all()
            queue = self._replies.get(seen.path.split("?")[0])
            return queue.popleft() if queue else Reply()

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        at = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        app: LocalServer = self.server.app  # type: ignore[attr-defined]
        reply = app.take(Seen(self.command, self.path, dict(self.headers.items()), body, at))
        if reply.hang:
            app.stopping.wait(timeout=30)
            self.close_connection = True
            return
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


@dataclass
class RecordingContext(LocalRunContext):
    """A run context that records requested waits instead of sleeping."""

    waits: list[float] = field(default_factory=list)

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def ctx() -> RecordingContext:
    return RecordingContext()


@pytest.fixture
def client(server: LocalServer) -> Iterator[httpx.Client]:
    with http.make_client(server.url, ssrf_allow=LOCAL, timeout=5.0) as c:
        yield c


def throttled(ctx: RecordingContext) -> list[dict[str, Any]]:
    return [f for _, event, f in ctx.log.lines if event == "http.throttled"]


def retries(ctx: RecordingContext) -> list[dict[str, Any]]:
    return [f for _, event, f in ctx.log.lines if event == "http.retry"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- throttling -------------------------------------------------------------------------------


def test_retry_after_seconds_is_honoured_and_spends_no_attempt(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    # Given a provider that throttles twice before answering
    server.script(
        "/people",
        Reply(429, {"Retry-After": "7"}),
        Reply(429, {"Retry-After": "3"}),
        Reply(200, body=b'{"people": []}'),
    )
    # When we call it with a budget of a single attempt
    response = http.request(client, "GET", "/people", ctx=ctx, max_attempts=1, park_after_s=60)
    # Then both throttles were waited out exactly and the call still succeeded
    assert response.json() == {"people": []}
    assert ctx.waits == [7.0, 3.0]
    assert [f["wait"] for f in throttled(ctx)] == [7.0, 3.0]
    assert len(server.seen("/people")) == 3


def test_retry_after_http_date_is_honoured(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    server.script("/x", Reply(429, {"Retry-After": format_datetime(when, usegmt=True)}), Reply())
    http.request(client, "GET", "/x", ctx=ctx, park_after_s=60)
    assert len(ctx.waits) == 1
    assert 28.0 < ctx.waits[0] <= 30.5  # HTTP dates have one-second resolution


def test_ratelimit_reset_epoch_is_honoured(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    reset = int(time.time()) + 20
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    server.script("/search/contact", Reply(429, headers), Reply())
    http.request(client, "POST", "/search/contact", ctx=ctx, json={"rpp": 10}, park_after_s=60)
    assert len(ctx.waits) == 1
    assert 18.0 < ctx.waits[0] <= 20.5
    assert json.loads(server.seen()[-1].body) == {"rpp": 10}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "Thu, 01 Jan 1970 00:16:50 GMT"}, 10.0),  # now = 1000
        ({"Retry-After": "soon"}, None),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000000030"}, 30.0),
        ({"X-RateLimit-Reset": "1000000030000"}, 30.0),  # epoch milliseconds
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "9"}, 9.0),  # delta seconds
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1000000030"}, None),
        ({"x-rate-limit-minute": "50", "x-minute-requests-left": "0"}, 20.0),
        ({"x-minute-requests-left": "3"}, None),
        ({"Retry-After": "5", "x-minute-requests-left": "0"}, 20.0),  # the longest wins
        ({}, None),
    ],
)
def test_server_wait_reads_provider_headers(
    headers: dict[str, str], expected: float | None
) -> None:
    now = 1_000_000_000.0 if any("Reset" in h for h in headers) else 1000.0
    assert http.server_wait_s(headers, now=now) == expected


def test_park_threshold_raises_rate_limited_without_waiting(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    server.script("/a", Reply(429, {"Retry-After": "600"}))
    with pytest.raises(RateLimited) as exc:
        http.request(client, "GET", "/a", ctx=ctx, park_after_s=120)
    assert exc.value.retry_after == 600.0
    assert ctx.waits == []
    assert [e for _, e, _ in ctx.log.lines] == ["http.rate_limited"]


def test_park_threshold_defaults_to_the_setting(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext, monkeypatch: Any
) -> None:
    from runtime.settings import reset_settings_cache

    monkeypatch.setenv("DASHIN_RATE_LIMIT_PARK_S", "5")
    reset_settings_cache()
    try:
        server.script("/a", Reply(503, {"Retry-After": "6"}))
        with pytest.raises(RateLimited) as exc:
            http.request(client, "GET", "/a", ctx=ctx)
    finally:
        reset_settings_cache()
    assert exc.value.retry_after == 6.0
    assert len(server.seen("/a")) == 1


def test_total_throttling_is_bounded_then_parks(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    server.always("/busy", Reply(429, {"Retry-After": "4"}))
    with pytest.raises(RateLimited):
        http.request(client, "GET", "/busy", ctx=ctx, park_after_s=60, max_throttle_s=10)
    assert ctx.waits == [4.0, 4.0]  # a third wait would pass 10 s in total
    assert len(server.seen("/busy")) == 3


def test_stop_during_a_wait_sends_nothing_more(server: LocalServer, client: httpx.Client) -> None:
    ctx = LocalRunContext()
    ctx.stop_event.set()  # the job is being paused: wait() returns at once
    server.script("/x", Reply(429, {"Retry-After": "5"}))
    with pytest.raises(RateLimited):
        http.request(client, "GET", "/x", ctx=ctx, park_after_s=60)
    assert len(server.seen("/x")) == 1


def test_without_context_waits_with_time_sleep(
    server: LocalServer, client: httpx.Client, monkeypatch: Any
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    server.script("/x", Reply(429, {"Retry-After": "2"}), Reply())
    assert http.request(client, "GET", "/x", park_after_s=60).status_code == 200
    assert slept == [2.0]


# --- failures ---------------------------------------------------------------------------------


def test_burst_of_server_errors_is_recovered(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    server.script("/p", Reply(500), Reply(502), Reply(503), Reply(504), Reply(408), Reply())
    response = http.request(client, "GET", "/p", ctx=ctx, max_attempts=6, park_after_s=60)
    assert response.status_code == 200
    logged = retries(ctx)
    assert [f["attempt"] for f in logged] == [1, 2, 3, 4, 5]
    assert [f["reason"] for f in logged] == [f"last status {s}" for s in (500, 502, 503, 504, 408)]
    # exponential backoff with full jitter: each wait lies in [0, 0.5 * 2^(n-1)]
    assert all(0 <= w <= 0.5 * 2**n for n, w in enumerate(ctx.waits))
    assert len(ctx.waits) == 5


def test_retry_after_on_a_server_error_lengthens_the_backoff(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    server.script("/p", Reply(503, {"Retry-After": "9"}), Reply())
    http.request(client, "GET", "/p", ctx=ctx, park_after_s=60)
    assert ctx.waits == [9.0]


def test_exhausted_retries_raise_transient_error(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    server.always("/down", Reply(503))
    with pytest.raises(TransientError) as exc:
        http.request(client, "GET", "/down", ctx=ctx, max_attempts=3, park_after_s=60)
    message = str(exc.value)
    assert "GET" in message and "/down" in message
    assert "3 attempts" in message and "last status 503" in message
    assert len(server.seen("/down")) == 3


def test_connect_errors_are_retried_then_transient(ctx: RecordingContext) -> None:
    with (
        http.make_client(f"http://127.0.0.1:{free_port()}", ssrf_allow=LOCAL) as client,
        pytest.raises(TransientError, match="ConnectError") as exc,
    ):
        http.request(client, "GET", "/x", ctx=ctx, max_attempts=3)
    assert isinstance(exc.value.__cause__, httpx.ConnectError)
    assert len(ctx.waits) == 2


def test_read_timeout_is_retried(server: LocalServer, ctx: RecordingContext) -> None:
    server.script("/slow", Reply(hang=True), Reply())
    with http.make_client(server.url, ssrf_allow=LOCAL, timeout=0.3) as client:
        response = http.request(client, "GET", "/slow", ctx=ctx)
    assert response.status_code == 200
    assert "ReadTimeout" in retries(ctx)[0]["reason"]


# --- what may be sent twice -------------------------------------------------------------------


def test_post_read_timeout_is_not_sent_again(server: LocalServer, ctx: RecordingContext) -> None:
    # A POST that may spend credits reached the provider, which then went quiet
    server.script("/people/match", Reply(hang=True), Reply())
    with (
        http.make_client(server.url, ssrf_allow=LOCAL, timeout=0.3) as client,
        pytest.raises(TransientError, match="not sent again") as exc,
    ):
        http.request(client, "POST", "/people/match", ctx=ctx, json={"id": 1})
    assert "ReadTimeout" in str(exc.value)
    assert len(server.wait_seen("/people/match", 1)) == 1
    assert retries(ctx) == [] and ctx.waits == []
    assert [e for _, e, _ in ctx.log.lines] == ["http.not_retried"]


def test_idempotent_post_read_timeout_is_retried(
    server: LocalServer, ctx: RecordingContext
) -> None:
    server.script("/search", Reply(hang=True), Reply())
    with http.make_client(server.url, ssrf_allow=LOCAL, timeout=0.3) as client:
        response = http.request(client, "POST", "/search", ctx=ctx, idempotent=True, json={})
    assert response.status_code == 200
    assert len(server.seen("/search")) == 2
    assert "ReadTimeout" in retries(ctx)[0]["reason"]


def test_get_can_be_marked_not_idempotent(server: LocalServer, ctx: RecordingContext) -> None:
    server.script("/act", Reply(500), Reply())
    with http.make_client(server.url, ssrf_allow=LOCAL) as client, pytest.raises(TransientError):
        http.request(client, "GET", "/act", ctx=ctx, idempotent=False)
    assert len(server.seen("/act")) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_server_error_is_not_sent_again(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext, status: int
) -> None:
    server.script("/match", Reply(status), Reply())
    with pytest.raises(TransientError, match=f"status {status}; not sent again"):
        http.request(client, "POST", "/match", ctx=ctx, json={})
    assert len(server.seen("/match")) == 1


def test_post_server_error_is_retried_when_idempotent(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    server.script("/search", Reply(500), Reply(502), Reply(504), Reply())
    response = http.request(client, "POST", "/search", ctx=ctx, idempotent=True, json={})
    assert response.status_code == 200
    assert len(server.seen("/search")) == 4


def test_post_is_retried_when_the_provider_says_it_did_not_act(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    # 503 with Retry-After, 408 (request not read) and 429 all mean "not processed"
    server.script(
        "/match",
        Reply(503, {"Retry-After": "2"}),
        Reply(408),
        Reply(429, {"Retry-After": "1"}),
        Reply(),
    )
    response = http.request(client, "POST", "/match", ctx=ctx, park_after_s=60, json={})
    assert response.status_code == 200
    assert len(server.seen("/match")) == 4
    assert [f["reason"] for f in retries(ctx)] == ["last status 503", "last status 408"]
    assert ctx.waits[0] == 2.0 and ctx.waits[-1] == 1.0


def test_post_connection_closed_after_sending_is_not_sent_again(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    server.script("/match", Reply(drop=True), Reply())
    with pytest.raises(TransientError, match="not sent again"):
        http.request(client, "POST", "/match", ctx=ctx, json={})
    assert len(server.seen("/match")) == 1
    # the same failure on a GET is retried
    server.script("/people", Reply(drop=True), Reply())
    assert http.request(client, "GET", "/people", ctx=ctx).status_code == 200
    assert len(server.seen("/people")) == 2


def test_post_connect_errors_are_retried(ctx: RecordingContext) -> None:
    # nothing reached the provider: sending again cannot make it act twice
    with (
        http.make_client(f"http://127.0.0.1:{free_port()}", ssrf_allow=LOCAL) as client,
        pytest.raises(TransientError, match="3 attempts: ConnectError"),
    ):
        http.request(client, "POST", "/people/match", ctx=ctx, max_attempts=3, json={})
    assert len(ctx.waits) == 2


def test_401_is_auth_error_with_provider_text(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    server.script(
        "/auth/health", Reply(401, {"Content-Type": "text/plain"}, b"Invalid access credentials.")
    )
    with pytest.raises(AuthError, match="401: Invalid access credentials"):
        http.request(client, "GET", "/auth/health", ctx=ctx)
    assert ctx.waits == []


def test_403_is_forbidden_error_with_provider_text(
    server: LocalServer, client: httpx.Client
) -> None:
    body = json.dumps({"error": "Not a master key", "error_code": "API_INACCESSIBLE"}).encode()
    server.script("/people/match", Reply(403, {"Content-Type": "application/json"}, body))
    with pytest.raises(ForbiddenError, match="403: Not a master key"):
        http.request(client, "POST", "/people/match", json={})


def test_long_provider_text_is_left_out(server: LocalServer, client: httpx.Client) -> None:
    server.script("/x", Reply(403, body=b"<html>" + b"x" * 5000 + b"</html>"))
    with pytest.raises(ForbiddenError) as exc:
        http.request(client, "GET", "/x")
    assert "xxxx" not in str(exc.value)
    assert str(exc.value).endswith("answered 403")


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_statuses_go_back_to_the_connector(
    server: LocalServer, client: httpx.Client, status: int
) -> None:
    server.script("/x", Reply(status, body=b'{"error": "Invalid parameters"}'))
    response = http.request(client, "POST", "/x", json={"page": 501})
    assert response.status_code == status
    assert len(server.seen("/x")) == 1


def test_limiter_is_acquired_before_every_attempt(
    server: LocalServer, client: httpx.Client, ctx: RecordingContext
) -> None:
    acquired: list[int] = []

    class Counting:
        def acquire(self, cost: int = 1) -> None:
            acquired.append(cost)

    server.script("/x", Reply(503), Reply(429, {"Retry-After": "1"}), Reply())
    http.request(client, "GET", "/x", ctx=ctx, limiter=Counting(), park_after_s=60)
    assert len(acquired) == len(server.seen("/x")) == 3


def test_non_http_schemes_are_refused() -> None:
    with pytest.raises(ConfigError, match="scheme 'ftp'"):
        http.make_client("ftp://files.example.com", ssrf_allow=LOCAL)
    with http.make_client(ssrf_allow=LOCAL) as client, pytest.raises(ConfigError, match="ftp"):
        http.request(client, "GET", "ftp://files.example.com/leads.csv")


# --- secrets ----------------------------------------------------------------------------------

API_KEY = "sk-live-4f9a8b7c6d5e"
QUERY_TOKEN = "qtok-77aa88bb99cc"
EXTRA = "extra-secret-123456"
PASSWORD = "hunter2-pass-word"


def _assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in (API_KEY, QUERY_TOKEN, EXTRA, PASSWORD):
            assert secret not in text


def test_secrets_never_reach_errors_or_log_lines(
    server: LocalServer, ctx: RecordingContext
) -> None:
    echo = json.dumps({"error": f"key {API_KEY} with {EXTRA} and {QUERY_TOKEN} is not allowed"})
    server.script(
        "/echo", Reply(503, body=echo.encode()), Reply(429), Reply(403, body=echo.encode())
    )
    server.always("/down", Reply(503, body=echo.encode()))
    with http.make_client(
        server.url, headers={"x-api-key": API_KEY}, secrets=[EXTRA], ssrf_allow=LOCAL
    ) as client:
        with pytest.raises(ForbiddenError) as forbidden:
            http.request(
                client, "GET", f"/echo?access_token={QUERY_TOKEN}&page=1", ctx=ctx, park_after_s=60
            )
        with pytest.raises(TransientError) as transient:
            http.request(
                client, "GET", "/down", ctx=ctx, params={"api_key": QUERY_TOKEN}, max_attempts=2
            )
    # the provider's text is kept, the secrets in it are not
    assert "is not allowed" in str(forbidden.value) and "***" in str(forbidden.value)
    assert "access_token=***" in str(forbidden.value) and "page=1" in str(forbidden.value)
    assert "api_key=***" in str(transient.value)
    assert server.seen("/echo")[0].headers["x-api-key"] == API_KEY  # it was really sent
    assert len(ctx.log.lines) >= 3
    _assert_clean(str(forbidden.value), str(transient.value), repr(ctx.log.lines))


def test_credentials_added_by_httpx_auth_are_redacted(
    server: LocalServer, ctx: RecordingContext
) -> None:
    server.script("/me", Reply(401, body=f"bad password {PASSWORD}".encode()))
    auth = httpx.BasicAuth("robot", PASSWORD)
    with (
        http.make_client(server.url, auth=auth, ssrf_allow=LOCAL) as client,
        pytest.raises(AuthError) as exc,
    ):
        http.request(client, "GET", "/me", ctx=ctx)
    assert "bad password ***" in str(exc.value)
    _assert_clean(str(exc.value))
