"""A production-mode API server writes one JSON stream (issue 12 item 6; issue 14 item 0 / H3).

Real server processes (two uvicorn workers, started afresh by spawn, as `dashin api` runs them):
every line of their output parses as JSON, each request has one access line carrying its
request id (the client's `X-Request-ID`, echoed back, or a generated one), and an unhandled
error is one bounded line with a plain traceback and no frame locals.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from runtime.embedded import free_port
from runtime.logging import MAX_TRACEBACK_CHARS
from tests.cli.conftest import Proc
from tests.cli.failing_app import SECRET_LOCAL

pytestmark = pytest.mark.slow


def _production(live_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in live_env.items() if k != "DASHIN_LOG_FORMAT"}  # "auto"
    env.update(DASHIN_ENV="production", DASHIN_LOG_LEVEL="info")
    return env


@contextmanager
def _serving(argv: list[str], env: dict[str, str]) -> Iterator[Proc]:
    """A server process, ready once a worker process has started its app (the shared
    socket listens once a worker is up)."""
    proc = Proc(argv, env)
    try:
        proc.wait_for("Application startup complete", timeout=120)
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def dashin_api(live_env: dict[str, str]) -> Iterator[tuple[str, Proc]]:
    """`dashin api --workers 2` in production mode."""
    port = free_port()
    argv = [sys.executable, "-m", "cli.main", "api", "--port", str(port), "--workers", "2"]
    with _serving(argv, _production(live_env)) as proc:
        yield f"http://127.0.0.1:{port}", proc


@pytest.fixture
def failing_api(live_env: dict[str, str]) -> Iterator[tuple[str, Proc]]:
    """`serve` (what `dashin api` runs) with an app that has a failing route."""
    port = free_port()
    script = (
        "from runtime.logging import configure_logging; from runtime.settings import get_settings;"
        "from cli.api_server import serve; configure_logging(get_settings());"
        f"serve('127.0.0.1', {port}, 2, app='tests.cli.failing_app:create')"
    )
    with _serving([sys.executable, "-c", script], _production(live_env)) as proc:
        yield f"http://127.0.0.1:{port}", proc


def _lines(proc: Proc) -> list[dict[str, Any]]:
    """Every output line, parsed: fails on the first line that is not one JSON object."""
    parsed = []
    for line in proc.output:
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\n--- all output:\n{''.join(proc.output)}")
        assert isinstance(entry, dict), line
        parsed.append(entry)
    return parsed


def _access_line(proc: Proc, request_id: str) -> dict[str, Any]:
    """Wait for the access line of `request_id` (written just after the response went out)."""
    proc.wait_for(f'"request_id": "{request_id}"', timeout=30)
    return next(e for e in _lines(proc) if e.get("request_id") == request_id)


def test_a_production_api_writes_only_json_lines_with_request_ids(
    dashin_api: tuple[str, Proc],
) -> None:
    url, proc = dashin_api
    with httpx.Client(base_url=url, timeout=30) as client:
        given = client.get("/api/v1/jobs", headers={"X-Request-ID": "req-abc.123"})
        generated = client.get("/healthz")
        insane = client.get("/api/v1/me", headers={"X-Request-ID": "bad id\twith spaces"})
        client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "x"})

    # The client's sane id is echoed and bound to the access line; others get a fresh one.
    assert given.status_code == 401 and given.headers["x-request-id"] == "req-abc.123"
    assert len(generated.headers["x-request-id"]) == 32
    assert insane.headers["x-request-id"] not in ("bad id\twith spaces", "")
    access = _access_line(proc, "req-abc.123")
    assert access["event"] == "http.request" and access["level"] == "info"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/api/v1/jobs", 401)
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] >= 0
    assert _access_line(proc, insane.headers["x-request-id"])["path"] == "/api/v1/me"
    proc.stop()
    entries = _lines(proc)  # every line, startup and shutdown included, is JSON
    assert any("Uvicorn running on" in e.get("event", "") for e in entries)
    assert any(e.get("logger") == "uvicorn.error" for e in entries)  # stdlib lines too


def test_an_unhandled_error_is_one_bounded_json_line_without_locals(
    failing_api: tuple[str, Proc],
) -> None:
    url, proc = failing_api
    with httpx.Client(base_url=url, timeout=30) as client:
        failed = client.get("/boom", headers={"X-Request-ID": "boom-1"})
        after = client.get("/healthz")  # the kept-alive connection still serves

    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["detail"] == "internal error"
    assert after.status_code in (200, 503)
    _access_line(proc, "boom-1")
    proc.stop()
    output = "".join(proc.output)
    errors = [e for e in _lines(proc) if e.get("request_id") == "boom-1" and e["level"] == "error"]
    assert len(errors) == 1, errors  # logged once: not again by uvicorn
    error = errors[0]
    assert error["event"] == "api.unhandled_error" and error["error_type"] == "RuntimeError"
    assert "Traceback (most recent call last)" in error["exception"]
    assert "RuntimeError: boom" in error["exception"]
    assert len(error["exception"]) <= MAX_TRACEBACK_CHARS + 100
    assert SECRET_LOCAL not in output and "x" * 100 not in output  # no frame locals
    assert "\x1b[" not in output  # no colours
    assert output.count("Traceback (most recent call last)") == 1


def test_a_stream_that_breaks_after_its_first_byte_is_a_broken_transfer_logged_once(
    failing_api: tuple[str, Proc],
) -> None:
    url, proc = failing_api
    # When a streamed answer fails after its status and first chunk went out
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get("/broken-stream", headers={"X-Request-ID": "broken-1"})
    with httpx.Client(base_url=url, timeout=30) as client:
        after = client.get("/healthz")
    assert after.status_code in (200, 503)  # the server goes on serving
    # Then the client saw a broken transfer, not a short body that looks complete, and the
    # failure is logged once, as one line
    _access_line(proc, "broken-1")
    proc.stop()
    errors = [
        e for e in _lines(proc) if e.get("request_id") == "broken-1" and e["level"] == "error"
    ]
    assert [e["event"] for e in errors] == ["api.response_failed"], errors
    assert "RuntimeError: the export broke" in errors[0]["exception"]
