"""End-to-end fixtures: the platform driven only over HTTP, as a new user would.

The API and the worker are real subprocesses (uvicorn on a free port; `python -m workers`) on
this test's own database and Redis. Their process plumbing is the CLI suite's (`tests.cli.
conftest`: `Proc`, `live_env`, `live_api`); this module adds the worker for every queue the
end-to-end tests use and an HTTP-only user.

    live_env      the subprocesses' environment (DATABASE_URL, REDIS_URL, DASHIN_SECRET_KEY,
                  DASHIN_SSRF_ALLOW=127.0.0.0/8 so connectors may reach the emulators)
    live_api      `LiveApi` (.url) once uvicorn logged that it is serving
    e2e_worker    `python -m workers --queues csv,apollo,synthetic`, ready on `worker.ready`
    new_user      a user who signed up and logged in through the API: `.client` is an
                  `httpx.Client` on `/api/v1` with the JWT from login

Waiting is always for a condition with a deadline (`wait_for_job`), never a bare sleep.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.cli.conftest import LiveApi, Proc, live_api, live_env

__all__ = [
    "ApiUser",
    "e2e_worker",
    "live_api",
    "live_env",
    "new_user",
    "read_all_logs",
    "sign_up",
    "wait_for_job",
]

PASSWORD = "correct horse battery staple"
QUEUES = "csv,apollo,synthetic"
Job = dict[str, Any]


@pytest.fixture
def e2e_worker(live_env: dict[str, str]) -> Iterator[Proc]:
    argv = [sys.executable, "-m", "workers", "--queues", QUEUES, "--threads", "2"]
    proc = Proc(argv, live_env)
    try:
        proc.wait_for("worker.ready")
        yield proc
    finally:
        proc.stop()


@dataclass(frozen=True)
class ApiUser:
    email: str
    domain_name: str
    domain_id: str
    token: str
    client: httpx.Client


def sign_up(api_url: str) -> ApiUser:
    """Sign up a manager of a brand-new domain, then log in: the first minute of a new user."""
    domain = f"e2e-{uuid.uuid4().hex[:10]}.example.com"
    email = f"ada@{domain}"
    base = f"{api_url}/api/v1"
    signup = httpx.post(
        f"{base}/auth/signup",
        json={"email": email, "password": PASSWORD, "domain_name": domain},
        timeout=30,
    )
    assert signup.status_code == 201, signup.text
    assert signup.json()["role"] == "manager"
    login = httpx.post(
        f"{base}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return ApiUser(email, domain, str(signup.json()["domain_id"]), token, client)


@pytest.fixture
def new_user(live_api: LiveApi) -> Iterator[ApiUser]:
    user = sign_up(live_api.url)
    try:
        yield user
    finally:
        user.client.close()


def wait_for_job(
    client: httpx.Client,
    job_id: str,
    condition: Callable[[Job], bool],
    what: str,
    timeout: float = 60.0,
) -> Job:
    """Poll `GET /jobs/{id}` until `condition(job)` holds; fail with the last state otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: Job = response.json()
        if condition(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; job: {job}")
        time.sleep(0.05)  # poll interval, not a synchronisation point


def read_all_logs(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """Every log line of a job through `GET /jobs/{id}/logs`, following `next_after_seq`."""
    lines: list[dict[str, Any]] = []
    after = 0
    while True:
        response = client.get(f"/jobs/{job_id}/logs", params={"after_seq": after, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()
        if not page["items"]:
            return lines
        lines.extend(page["items"])
        after = page["next_after_seq"]
