"""Per-request context: a request id, one access line, errors logged once, CORS.

`RequestContextMiddleware` (the outermost of ours) gives each request an id — the client's
`X-Request-ID` when it is sane (`REQUEST_ID_PATTERN`), else a fresh one — returns it in the
response's `X-Request-ID`, and binds it with structlog's contextvars, so every line logged while
serving the request carries `request_id` (sync routes run in worker threads that copy the
context; a job the request starts carries it in its move's log line, `models.job_states`).
When the response is done it writes one access line::

    {"event": "http.request", "method": "GET", "path": "/api/v1/jobs", "status": 200,
     "duration_ms": 3.1, "request_id": "...", ...}

An exception no handler took is answered here with the 500 problem and logged once
(`api.problems.internal_error_response`: one JSON line, bounded plain traceback), and not
re-raised: re-raising made uvicorn log the same traceback a second time and drop the client's
kept-alive connection. When a streamed response breaks after its first byte, the error is
logged once and the connection is left unfinished, so the client sees a broken transfer rather
than a truncated body that looks complete.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

from api.http_middleware import HttpMiddleware
from api.problems import internal_error_response
from runtime.settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
#: an id we echo into logs and headers: short, printable, no spaces or quotes
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
#: access lines for probes and scrapes are debug-level: they would drown the rest
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_LOGGED_PATH = 1000
#: request headers a browser client may send cross-origin (besides the CORS-safelisted ones)
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Dashin-Domain",
    "Idempotency-Key",
    REQUEST_ID_HEADER,
)
CORS_EXPOSED_HEADERS = (REQUEST_ID_HEADER, "Idempotent-Replayed", "Retry-After", "Location")

log = structlog.get_logger("api.access")


def request_id_from(scope: Scope) -> str:
    """The client's `X-Request-ID` when it is sane, else a new random id."""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if REQUEST_ID_PATTERN.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestContextMiddleware(HttpMiddleware):
    """Request id, access line and the last word on unhandled errors (module docstring)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from(scope)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if response_started:
                    log.error("api.response_failed", error_type=type(exc).__name__, exc_info=exc)
                else:
                    await internal_error_response(exc)(scope, receive, send_with_id)
            finally:
                path: str = scope.get("path", "")
                line = log.debug if path in QUIET_PATHS else log.info
                line(
                    "http.request",
                    method=scope.get("method"),
                    path=path[:MAX_LOGGED_PATH],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )


def install_request_context(app: FastAPI, settings: Settings | None) -> None:
    """Add CORS (when `DASHIN_CORS_ORIGINS` names origins) inside the request-context layer.

    Call after every other middleware: the last one added is the outermost, and the request
    id and access line must cover everything, CORS preflights included.
    """
    origins = settings.cors_origins if settings is not None else []
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials="*" not in origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)
