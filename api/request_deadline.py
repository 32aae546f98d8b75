"""The per-request deadline (issue 14, item 0): no request holds the server for longer than
`DASHIN_REQUEST_TIMEOUT_S` (30 s) before its response starts.

The probe found error paths that cost 38 s of CPU and requests that queued behind them for
90 s. Two halves bound a request now:

* `RequestDeadlineMiddleware` answers `503` with the problem code `request_timeout` (and
  `Retry-After`) when the app has not started its response by the deadline; whatever the app
  answers later is dropped. Async code is cancelled at its next `await`.
* A sync route runs in a thread, which cannot be cancelled. So every SQL statement sent on behalf
  of a request past its deadline raises `RequestTimedOut` instead of running: the abandoned work
  ends at its next statement, and the statement it is in is bounded by PostgreSQL's
  `statement_timeout` (`DASHIN_API_STATEMENT_TIMEOUT_S`). A request's work is therefore bounded
  by the deadline plus one statement timeout.

The clock counts the server's time, not the client's: it restarts whenever a chunk of the request
body arrives (a large CSV upload is stored as it streams in; its size limit bounds it). Once the
response has started, the deadline no longer applies: the SSE streams and exports send their
headers at once and have their own bounds (principal re-checks, the client going away, each
statement's timeout).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http_middleware import HttpMiddleware
from api.problems import problem_response
from runtime.errors import TransientFailure

RETRY_AFTER_S = 5
log = structlog.get_logger("api.request_deadline")


class RequestTimedOut(TransientFailure):
    """The request ran past `DASHIN_REQUEST_TIMEOUT_S`: retry later, or ask for less."""

    code = "request_timeout"


@dataclass
class _Deadline:
    timeout_s: float
    at: float
    started: bool = False

    def restart(self) -> None:
        self.at = time.monotonic() + self.timeout_s

    def passed(self) -> bool:
        return not self.started and time.monotonic() >= self.at


_current: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "dashin_request_deadline", default=None
)


def _refuse_late_statement(*_args: Any) -> None:
    deadline = _current.get()
    if deadline is not None and deadline.passed():
        raise RequestTimedOut(_detail(deadline.timeout_s))


def _detail(timeout_s: float) -> str:
    return (
        f"the request took longer than {timeout_s:g} s (DASHIN_REQUEST_TIMEOUT_S) and was "
        "stopped; retry later or narrow it"
    )


class RequestDeadlineMiddleware(HttpMiddleware):
    """See the module docstring."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        super().__init__(app)
        self.timeout_s = timeout_s

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = _Deadline(self.timeout_s, time.monotonic() + self.timeout_s)
        answered = False

        async def timed_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                deadline.restart()  # the client is still sending: its time, not ours
            return message

        async def guarded_send(message: Message) -> None:
            if answered:
                return  # the late answer of a request we have answered already
            if message["type"] == "http.response.start":
                deadline.started = True
            await send(message)

        token = _current.set(deadline)
        try:  # the task copies the context: the app's threads see this request's deadline
            task = asyncio.ensure_future(self.app(scope, timed_receive, guarded_send))
        finally:
            _current.reset(token)
        while not task.done():
            await asyncio.wait({task}, timeout=max(0.0, deadline.at - time.monotonic()))
            if task.done() or deadline.started:
                break
            if deadline.passed():
                answered = True
                task.cancel()  # a thread inside goes on to its next statement, and stops there
                task.add_done_callback(_settle_late)
                log.warning(
                    "api.request_timeout",
                    method=scope.get("method"),
                    path=str(scope.get("path", ""))[:1000],
                    timeout_s=self.timeout_s,
                )
                response = problem_response(
                    503,
                    "Service unavailable",
                    _detail(self.timeout_s),
                    code=RequestTimedOut.code,
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
                await response(scope, receive, send)
                return
        await task  # finished (its result or error goes up), or streaming past its start


def _settle_late(task: asyncio.Future[None]) -> None:
    """Collect the outcome of a request answered by the deadline (so asyncio does not report
    an unretrieved error); what the request did after its deadline is only worth a debug line."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.debug("api.late_request_failed", error_type=type(exc).__name__)


_hooked = False


def install_request_deadline(app: FastAPI, timeout_s: float) -> None:
    """Add the middleware (when `timeout_s` > 0) and, once per process, the statement hook."""
    global _hooked
    if timeout_s <= 0:
        return
    app.add_middleware(RequestDeadlineMiddleware, timeout_s=timeout_s)
    if not _hooked:
        event.listen(Engine, "before_cursor_execute", _refuse_late_statement)
        _hooked = True
