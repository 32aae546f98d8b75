"""The shared base of the provider emulators: a threaded HTTP server on 127.0.0.1.

An `Emulator` owns a stdlib `ThreadingHTTPServer` (HTTP/1.1 keep-alive, Nagle off) bound to a
free port, a `Clock` tests can move forward, `Faults` switchable at runtime, rate-limit `Window`s
and thread-safe `Stats`. Every request goes through one pipeline::

    count + log -> added latency -> rate-limit windows (429 + violation) -> injected 429 / 5xx
    -> route handler (may raise `Reject`) -> provider headers (`decorate`) -> response

Subclasses register routes in `self.routes[(method, path)]` and shape provider-specific bodies
in `throttled()` / `failure()` / `decorate()`. Page faults (malformed JSON, truncated or empty
page) are pulled by the handlers with `self.faults.take_page_fault(page)` and applied with
`apply_page_fault`.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from connectors.sandbox.faults import Faults, PageFault
from connectors.sandbox.limits import LoggedRequest, Stats, Window

__all__ = [
    "Clock",
    "Emulator",
    "Faults",
    "LoggedRequest",
    "PageFault",
    "Reject",
    "Request",
    "Response",
    "Stats",
    "Window",
    "json_response",
    "parse_rate",
]


class Clock:
    """Monotonic and wall time plus an offset that tests advance instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Request:
    """One parsed HTTP request as the handlers see it."""

    __slots__ = ("_query", "body", "headers", "method", "path", "raw_query")

    def __init__(
        self, method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.raw_query = raw_query
        self.headers = headers  # keys lower-cased
        self.body = body
        self._query: dict[str, list[str]] | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.raw_query, keep_blank_values=True)
        return self._query

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The JSON body; raises `ValueError` when it is not JSON."""
        return json.loads(self.body) if self.body.strip() else None


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else {}


class Reject(Exception):
    """Raised by a handler to answer with `response` at once (auth, validation, caps)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    out = {"Content-Type": "application/json"}
    if headers:
        out.update(headers)
    return Response(status, body, out)


def apply_page_fault(fault: PageFault | None, records: list[Any]) -> list[Any] | None:
    """Records after a truncate/empty fault; None means "answer with malformed JSON"."""
    if fault is None or fault.kind == "huge":  # padding is added by the emulator that has it
        return records
    if fault.kind == "malformed":
        return None
    if fault.kind == "empty":
        return []
    return records[: fault.keep]


MALFORMED_BODY = b'{"truncated": [{"id": "1", "name": "unterminated'


def malformed_response() -> Response:
    return Response(200, MALFORMED_BODY, {"Content-Type": "application/json"})


def parse_rate(spec: str) -> tuple[int, float]:
    """`"100/min"`, `"5/s"`, `"1500/60"`, `"10/10s"`, `"50000/day"` -> (limit, period_s)."""
    count, _, period = spec.partition("/")
    units = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
    units |= {"h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
    period = period.strip().lower() or "s"
    digits = period.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = period[len(digits) :] or "s"
    if unit not in units or not count.strip().isdigit():
        raise ValueError(f"bad rate limit {spec!r}; use N/period such as 100/min or 10/5s")
    return int(count), float(digits or 1) * units[unit]


Handler = Callable[[Request], Response]


class Emulator:
    """Base class: routing, the request pipeline and the server's life cycle."""

    name: ClassVar[str] = "emulator"

    def __init__(
        self,
        *,
        port: int = 0,
        latency_ms: float = 0.0,
        rate_limit: tuple[int, float] | str | None = None,
    ) -> None:
        self.clock = Clock()
        self.faults = Faults(self.clock)
        self.faults.latency_ms = latency_ms
        self.stats = Stats()
        self.windows: dict[str, Window] = {}
        self.routes: dict[tuple[str, str], Handler] = {}
        self._port = port
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        if rate_limit is not None:
            self.set_rate_limit(
                *(parse_rate(rate_limit) if isinstance(rate_limit, str) else rate_limit)
            )

    # -- configuration -------------------------------------------------------------------
    def set_rate_limit(
        self, limit: int | None, period_s: float = 1.0, *, name: str = "default"
    ) -> Window | None:
        """A sliding window of `limit` requests per `period_s` (None removes it)."""
        with self._lock:
            if limit is None:
                self.windows.pop(name, None)
                return None
            window = Window(name, limit, period_s)
            self.windows[name] = window
            return window

    @property
    def violations(self) -> int:
        """Requests that arrived while a rate-limit window was full (answered 429)."""
        return sum(w.violations for w in list(self.windows.values()))

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._httpd = _Server(("127.0.0.1", self._port), _RequestHandler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{self.name} emulator is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL (no trailing slash); provider paths such as `/api/v1/...` append to it."""
        return f"http://127.0.0.1:{self.port}"

    # -- the pipeline ---------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        number = self.stats.begin()
        delay = self.faults.latency_ms
        if delay > 0:
            time.sleep(delay / 1000)
        response = self._pipeline(req, number)
        self.decorate(req, response)
        self.stats.end(
            LoggedRequest(
                number, req.method, req.path, req.raw_query, response.status, req.headers, req.body
            )
        )
        return response

    def _pipeline(self, req: Request, number: int) -> Response:
        full = self._acquire(req)
        if full is not None:
            now = self.clock.wall() if full.wall else self.clock.now()
            return self.throttled(req, max(1, math.ceil(full.reset_in(now))), full)
        injected = self.faults.take_request_fault(number)
        if injected is not None:
            kind, value = injected
            if kind == "throttle":
                return self.throttled(req, value, None)
            return self.failure(req, int(value), f"injected {int(value)} error")
        handler = self.routes.get((req.method, req.path))
        if handler is None:
            if any(path == req.path for _, path in self.routes):
                return self.failure(req, 405, f"method {req.method} not allowed")
            return self.failure(req, 404, f"no route for {req.path}")
        try:
            return handler(req)
        except Reject as rejected:
            return rejected.response

    def window_applies(self, window: Window, req: Request) -> bool:
        """Whether `window` counts `req`; subclasses scope windows to endpoints."""
        return window.paths is None or req.path in window.paths

    def _acquire(self, req: Request) -> Window | None:
        """Record the request in every applicable window, or return the first full one."""
        now, wall = self.clock.now(), self.clock.wall()
        with self._lock:
            windows = [w for w in self.windows.values() if self.window_applies(w, req)]
            full = [w for w in windows if w.is_full(wall if w.wall else now)]
            if full:
                for w in full:
                    w.violations += 1
                return full[0]
            for w in windows:
                w.record(wall if w.wall else now)
        return None

    # -- provider-specific shapes (override) ----------------------------------------------
    def throttled(self, req: Request, retry_after: float, window: Window | None) -> Response:
        """429: by default a JSON message and `Retry-After` in whole seconds."""
        headers = {"Retry-After": str(max(0, math.ceil(retry_after)))}
        return json_response(429, {"message": "Too many requests"}, headers)

    def failure(self, req: Request, status: int, message: str) -> Response:
        return json_response(status, {"error": message})

    def decorate(self, req: Request, response: Response) -> None:
        """Add provider headers (rate-limit counters) to every response."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], emu: Emulator
    ) -> None:
        self.emulator = emu
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock handler threads parked on idle keep-alive connections."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, parts.path, parts.query, headers, body)
        resp = self.server.emulator.handle(req)
        self.send_response(resp.status)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD" and resp.body:
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib access log; `Emulator.stats` keeps the request log."""
