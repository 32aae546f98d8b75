"""Request ids (echoed, generated, carried into the job a request starts), CORS from
`DASHIN_CORS_ORIGINS`, unhandled errors answered once as a problem, the API's statement timeout,
and the bounded plain traceback the logs carry."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from api import job_moves
from api.deps import SessionDep
from runtime.errors import ConfigurationError
from runtime.logging import MAX_LINE_CHARS, MAX_TRACEBACK_CHARS, bounded_traceback
from runtime.settings import load_settings, reset_settings_cache
from tests.api.conftest import MakeUser
from tests.api.helpers import connectors_registry, create_source  # noqa: F401  (fixture)


def _app(monkeypatch: pytest.MonkeyPatch, **env: str) -> FastAPI:
    from api.app import create_app

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    return create_app()


AppWith = Callable[..., FastAPI]


@pytest.fixture
def app_with(settings_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppWith]:
    """`create_app()` under extra environment variables."""
    from runtime.db import limit_statement_time, reset_engines

    yield lambda **env: _app(monkeypatch, **env)
    limit_statement_time(None)
    reset_engines()


def test_the_request_id_is_echoed_or_generated(api_client: TestClient) -> None:
    given = api_client.get("/healthz", headers={"X-Request-ID": "abc-123_x.y:z"})
    missing = api_client.get("/healthz")
    insane = api_client.get("/healthz", headers={"X-Request-ID": "a" * 129})
    unknown = api_client.get("/no/such/route", headers={"X-Request-ID": "nf-1"})

    assert given.headers["x-request-id"] == "abc-123_x.y:z"
    assert len(missing.headers["x-request-id"]) == 32
    assert len(insane.headers["x-request-id"]) == 32
    assert unknown.status_code == 404 and unknown.headers["x-request-id"] == "nf-1"


@pytest.mark.usefixtures("connectors_registry")
def test_a_job_started_by_a_request_names_it_in_its_log(
    api_client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_moves, "enqueue_job", lambda *_: None)
    user = make_user()
    source = create_source(api_client, user)

    created = api_client.post(
        "/api/v1/jobs",
        json={"data_source_id": source["id"], "start": True},
        headers={**user.headers, "X-Request-ID": "trace-42"},
    )

    assert created.status_code == 201, created.text
    logs = api_client.get(f"/api/v1/jobs/{created.json()['id']}/logs", headers=user.headers)
    start = next(line for line in logs.json()["items"] if line["event"] == "job.start")
    assert start["fields"]["request_id"] == "trace-42"


def test_cors_answers_only_the_configured_origins(app_with: AppWith) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,idempotency-key,content-type",
    }
    app = app_with(DASHIN_CORS_ORIGINS="https://app.example.com, https://crm.example.com/")
    with TestClient(app) as client:
        allowed = client.options(
            "/api/v1/jobs", headers={"Origin": "https://crm.example.com", **preflight}
        )
        refused = client.options(
            "/api/v1/jobs", headers={"Origin": "https://evil.example", **preflight}
        )
        simple = client.get("/healthz", headers={"Origin": "https://app.example.com"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://crm.example.com"
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in allowed.headers  # preflights are inside the request context too


def test_without_cors_origins_no_cors_headers(api_client: TestClient) -> None:
    response = api_client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in response.headers


def test_bad_cors_origins_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHIN_CORS_ORIGINS", "app.example.com")
    with pytest.raises(ConfigurationError, match="DASHIN_CORS_ORIGINS"):
        load_settings()


def test_an_unhandled_error_is_a_problem_with_the_request_id(app_with: AppWith) -> None:
    app = app_with()

    @app.get("/explode")
    def explode() -> None:
        raise RuntimeError("kaboom")

    with TestClient(app, raise_server_exceptions=True) as client:
        # Not raised into the client: answered (and logged) by the request-context layer.
        response = client.get("/explode", headers={"X-Request-ID": "ex-1"})
        after = client.get("/healthz")
    assert response.status_code == 500
    assert response.json() == {
        "type": "urn:dashin:problem:internal",
        "title": "Internal error",
        "status": 500,
        "detail": "internal error",
    }
    assert response.headers["x-request-id"] == "ex-1"
    assert after.status_code in (200, 503)


def test_api_connections_carry_the_statement_timeout(app_with: AppWith) -> None:
    from api.db_threads import sessions

    app_with(DASHIN_API_STATEMENT_TIMEOUT_S="0.25")
    with sessions()() as session:
        assert session.scalar(text("SHOW statement_timeout")) == "250ms"
        with pytest.raises(OperationalError) as raised:
            session.execute(text("SELECT pg_sleep(2)"))
        assert isinstance(raised.value.orig, psycopg.errors.QueryCanceled)


def test_a_request_past_the_statement_timeout_is_a_503_to_retry(app_with: AppWith) -> None:
    app = app_with(DASHIN_API_STATEMENT_TIMEOUT_S="0.2")

    @app.get("/slow")
    def slow(session: SessionDep) -> None:
        session.execute(text("SELECT pg_sleep(3)"))

    with TestClient(app, raise_server_exceptions=True) as client:
        started = time.monotonic()
        response = client.get("/slow")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["type"] == "urn:dashin:problem:statement_timeout"
    assert response.headers["retry-after"] == "5"
    assert elapsed < 2.5  # cancelled at 0.2 s, not after the 3 s sleep


def test_the_statement_timeout_defaults_to_fifteen_seconds(app_with: AppWith) -> None:
    from api.db_threads import sessions

    app_with()
    with sessions()() as session:
        assert session.scalar(text("SHOW statement_timeout")) == "15s"


def test_a_traceback_is_plain_and_bounded() -> None:
    # Two functions calling each other: frames that differ, so none fold into "repeated".
    def ping(n: int) -> None:
        secret_local = "hunter2"  # noqa: F841
        if n == 0:
            raise ValueError("bad value " + "z" * 20_000)
        pong(n - 1)

    def pong(n: int) -> None:
        ping(n)

    try:
        ping(150)
    except ValueError as exc:
        rendered = bounded_traceback(exc)
    assert rendered.startswith("Traceback (most recent call last):")
    assert "ValueError: bad value zzz" in rendered  # the innermost frames and message are kept
    assert "characters cut" in rendered
    assert len(rendered) <= MAX_TRACEBACK_CHARS + 100
    assert all(len(line) <= MAX_LINE_CHARS + 30 for line in rendered.splitlines())
    assert "hunter2" not in rendered and "\x1b[" not in rendered
