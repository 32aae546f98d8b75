"""The per-request deadline (issue 14, item 0; `api.request_deadline`): a request that has not
started its response by `DASHIN_REQUEST_TIMEOUT_S` is answered 503 `request_timeout`, the work
behind it stops at its next statement, and streams are exempt once they have started."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from sqlalchemy import text
from starlette.types import Message, Receive, Scope, Send

from api.deps import SessionDep
from api.request_deadline import RequestDeadlineMiddleware, RequestTimedOut
from runtime.settings import get_settings, reset_settings_cache

AppWith = Callable[..., FastAPI]


@pytest.fixture
def app_with(settings_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppWith]:
    from api.app import create_app
    from runtime.db import limit_statement_time, reset_engines

    def make(**env: str) -> FastAPI:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        reset_settings_cache()
        return create_app()

    yield make
    limit_statement_time(None)
    reset_engines()


def _warm_up(client: TestClient) -> None:
    """The first request of a fresh app (settings, imports) may take longer than a short
    deadline on a busy machine."""
    assert any(client.get("/healthz").status_code == 200 for _ in range(10))


def test_the_deadline_defaults_to_thirty_seconds(settings_env: None) -> None:
    assert get_settings().request_timeout_s == 30.0


def test_a_slow_request_is_answered_503_and_its_work_stops_at_the_next_statement(
    app_with: AppWith,
) -> None:
    app = app_with(DASHIN_REQUEST_TIMEOUT_S="1")
    statements: list[float] = []
    ended: list[BaseException] = []
    finished = threading.Event()

    @app.get("/warm")
    def warm(session: SessionDep) -> None:
        session.execute(text("SELECT 1"))  # the first connection, settings and imports

    @app.get("/slow")
    def slow(session: SessionDep) -> None:
        try:
            for _ in range(100):  # 10 s of short statements, none past the statement timeout
                session.execute(text("SELECT pg_sleep(0.1)"))
                statements.append(time.monotonic())
        except BaseException as exc:
            ended.append(exc)
            raise
        finally:
            finished.set()

    with TestClient(app) as client:
        # (the first connection may take longer than the deadline on a busy machine)
        assert any(client.get("/warm").status_code == 200 for _ in range(10))
        started = time.monotonic()
        response = client.get("/slow", headers={"X-Request-ID": "slow-1"})
        answered = time.monotonic() - started
        after = client.get("/healthz")
        assert finished.wait(10)
    # Then the client got the problem in about the deadline, with its request id
    assert response.status_code == 503
    assert response.json()["type"] == "urn:dashin:problem:request_timeout"
    assert "DASHIN_REQUEST_TIMEOUT_S" in response.json()["detail"]
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"] == "slow-1"
    assert answered < 3.0, answered
    # And the route's thread was refused its next statement, long before its ten seconds
    assert [type(e) for e in ended] == [RequestTimedOut]
    assert len(statements) < 30, len(statements)
    assert after.status_code in (200, 503)  # the kept-alive connection still serves


def test_an_async_request_past_its_deadline_is_cancelled(app_with: AppWith) -> None:
    app = app_with(DASHIN_REQUEST_TIMEOUT_S="1")
    outcome: list[str] = []

    @app.get("/waits")
    async def waits() -> None:
        try:
            await asyncio.sleep(30)
            outcome.append("ran to the end")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    with TestClient(app) as client:
        _warm_up(client)
        started = time.monotonic()
        response = client.get("/waits")
        answered = time.monotonic() - started
    assert response.status_code == 503 and answered < 3.0
    assert outcome == ["cancelled"]


def test_a_stream_that_started_is_not_cut(app_with: AppWith) -> None:
    app = app_with(DASHIN_REQUEST_TIMEOUT_S="0.5")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(8):  # 1.6 s in all, past the deadline
                await asyncio.sleep(0.2)
                yield f"{i}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    with TestClient(app) as client:
        _warm_up(client)
        response = client.get("/stream")
    assert response.status_code == 200
    assert response.text == "".join(f"{i}\n" for i in range(8))


def test_the_clock_restarts_while_the_client_is_still_sending() -> None:
    # An app that reads the whole body, then answers: a slow upload is the client's time
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})

    async def run() -> list[Message]:
        chunks = [b"x" * 1000] * 6
        sent: list[Message] = []

        async def receive() -> Message:
            await asyncio.sleep(0.15)  # the pace of a slow client: 0.9 s for the body
            body = chunks.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(chunks)}

        async def send(message: Message) -> None:
            sent.append(message)

        scope: Scope = {"type": "http", "method": "POST", "path": "/upload", "headers": []}
        await RequestDeadlineMiddleware(app, timeout_s=0.4)(scope, receive, send)
        return sent

    sent = asyncio.run(run())
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"6000"
