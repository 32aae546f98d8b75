"""No request costs a real server more than a bounded amount of work (issue 14, item 0).

`dashin api` runs as it does in production (its own process, uvicorn, one worker). A test
transaction holds `ACCESS EXCLUSIVE` on `leads`, so `GET /leads` waits inside PostgreSQL for as
long as the test wants: the slowest request there is.

* With the statement timeout off, the request deadline answers it: 503 `request_timeout`
  after `DASHIN_REQUEST_TIMEOUT_S`, while `/healthz` keeps answering at once; once the lock
  goes, the abandoned work ends (its next statement is refused) and the server serves again.
* With the deadline long, PostgreSQL's `statement_timeout` of the API's connections answers
  it: 503 `statement_timeout` after `DASHIN_API_STATEMENT_TIMEOUT_S`.

And the probe's H3 reproduction: twelve parallel `GET /leads?q=%00` from one caller used to
cost 38 s of CPU and 600 KB of log each, leaving a plain `GET /leads` unanswered for 90 s.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import Engine, text

from runtime.embedded import free_port
from tests.cli.conftest import CliUser, Proc

pytestmark = pytest.mark.slow


@contextmanager
def _api_proc(live_env: dict[str, str], **env: str) -> Iterator[tuple[str, Proc]]:
    port = free_port()
    argv = [sys.executable, "-m", "cli.main", "api", "--port", str(port), "--workers", "1"]
    proc = Proc(argv, {**live_env, **env})
    try:
        proc.wait_for("Application startup complete", timeout=120)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.stop()


@contextmanager
def _api(live_env: dict[str, str], **env: str) -> Iterator[str]:
    with _api_proc(live_env, **env) as (url, _proc):
        yield url


@contextmanager
def _leads_locked(engine: Engine) -> Iterator[None]:
    with engine.connect() as conn, conn.begin():
        conn.execute(text("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE"))
        yield


def _server_backends_waiting(engine: Engine) -> int:
    """The API's connections waiting on a lock right now."""
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dashin'"
                    " AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


def test_a_request_past_the_deadline_is_a_503_and_the_server_stays_responsive(
    live_env: dict[str, str], cli_user: CliUser, engine: Engine
) -> None:
    auth = {"Authorization": f"Bearer {cli_user.key}"}
    env = {"DASHIN_REQUEST_TIMEOUT_S": "2", "DASHIN_API_STATEMENT_TIMEOUT_S": "0"}
    with _api(live_env, **env) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/api/v1/leads", headers=auth).status_code == 200  # warm
        with _leads_locked(engine):
            # When a request waits on the lock past the deadline
            answers: dict[str, object] = {}

            def slow() -> None:
                started = time.monotonic()
                answers["response"] = client.get("/api/v1/leads", headers=auth)
                answers["took"] = time.monotonic() - started

            caller = threading.Thread(target=slow)
            caller.start()
            # Then the server answers its health check meanwhile, at once
            with httpx.Client(base_url=url, timeout=10) as other:
                health = other.get("/healthz")
            caller.join(30)
            assert _server_backends_waiting(engine) == 1  # the abandoned work still waits
        response = answers["response"]
        assert isinstance(response, httpx.Response)
        assert health.status_code == 200 and health.elapsed.total_seconds() < 1.0
        # And the slow request got the problem after about the deadline
        assert response.status_code == 503, response.text
        assert response.json()["type"] == "urn:dashin:problem:request_timeout"
        assert response.headers["retry-after"] == "5"
        assert 1.9 <= float(str(answers["took"])) < 6.0, answers["took"]
        # And once the lock is gone the abandoned work ends and the server serves as before
        assert client.get("/api/v1/leads", headers=auth).status_code == 200
        assert _server_backends_waiting(engine) == 0


def test_api_connections_cancel_a_statement_past_the_statement_timeout(
    live_env: dict[str, str], cli_user: CliUser, engine: Engine
) -> None:
    auth = {"Authorization": f"Bearer {cli_user.key}"}
    env = {"DASHIN_REQUEST_TIMEOUT_S": "60", "DASHIN_API_STATEMENT_TIMEOUT_S": "1"}
    with _api(live_env, **env) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/api/v1/leads", headers=auth).status_code == 200
        with _leads_locked(engine):
            started = time.monotonic()
            response = client.get("/api/v1/leads", headers=auth)
            took = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:dashin:problem:statement_timeout"
    assert 0.9 <= took < 5.0, took


def test_twelve_parallel_nul_requests_cost_less_than_a_success(
    live_env: dict[str, str], cli_user: CliUser
) -> None:
    auth = {"Authorization": f"Bearer {cli_user.key}"}

    def get(url: str, path: str) -> tuple[int, float]:
        with httpx.Client(base_url=url, timeout=60) as client:
            started = time.monotonic()
            status = client.get(path, headers=auth).status_code
            return status, time.monotonic() - started

    with _api_proc(live_env, DASHIN_ENV="production") as (url, proc):
        assert get(url, "/api/v1/leads")[0] == 200  # warm
        logged_before = sum(len(line) for line in proc.output)
        # When one caller sends twelve NUL requests at once, and a plain request with them
        with ThreadPoolExecutor(13) as pool:
            hostile = [pool.submit(get, url, "/api/v1/leads?q=%00") for _ in range(12)]
            plain = pool.submit(get, url, "/api/v1/leads")
            answers = [f.result() for f in hostile]
            plain_status, plain_took = plain.result()
        proc.stop()
        logged = sum(len(line) for line in proc.output) - logged_before
    # Then each is refused with a 4xx at once, the plain one is served, and the log stays small
    print(f"slowest refusal {max(t for _, t in answers):.2f} s, plain {plain_took:.2f} s")
    assert {status for status, _ in answers} == {422}
    assert max(t for _, t in answers) < 3.0
    assert plain_status == 200 and plain_took < 3.0
    assert logged < 30_000, logged  # about one access line each (the probe: 600 KB each)
