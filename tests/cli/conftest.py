"""A live stack for CLI tests: a real API (uvicorn subprocess) and a real worker subprocess.

    live_env        the environment every subprocess (and the in-process CLI) uses
    live_api        `LiveApi`: uvicorn on a free port, ready once it logged that it is serving
    worker          a `python -m workers --queues synthetic,csv` process, ready on `worker.ready`
    cli_user        a manager with an API key in a fresh domain (`.key`, `.domain_id`, ...)
    cli_env         DASHIN_API_URL / DASHIN_API_KEY set for in-process commands (CliRunner)
    synthetic_source  a synthetic data source of `cli_user`'s domain

Readiness is read from each process's own log line, never guessed with a sleep.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from runtime.embedded import free_port
from tests.factories import make_source

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-key-that-is-long-enough-123"


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> Iterator[None]:
    """In-process commands cache an engine, a broker and a log sink per process."""
    from runtime.broker import set_broker
    from runtime.db import reset_engines

    yield
    reset_engines()
    set_broker(None)
    # A command run under CliRunner configured structlog with the runner's (now closed) stderr.
    from runtime.logging import configure_logging
    from runtime.settings import load_settings

    configure_logging(load_settings(), force=True)


class Proc:
    """A subprocess whose combined output is pumped into a queue of lines (never blocks it)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, marker: str, timeout: float = 60.0) -> None:
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise RuntimeError(f"process exited before {marker!r}:\n{''.join(self.output)}")
            if marker in line:
                return

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


@pytest.fixture
def live_env(db_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        DASHIN_SECRET_KEY=SECRET,
        DASHIN_SSRF_ALLOW="127.0.0.0/8",
        DASHIN_ENV=os.environ.get("DASHIN_ENV", "development"),
        # sign-ups through the live API found unverified domains; their DNS cannot be faked
        # across processes (tests/api/test_domain_verification.py covers the proof)
        DASHIN_REQUIRE_DOMAIN_PROOF="false",
        DASHIN_HOME=str(tmp_path / "home"),
        DASHIN_LOG_FORMAT="json",
        DASHIN_LOG_LEVEL="info",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class LiveApi:
    url: str
    port: int
    proc: Proc


@pytest.fixture
def live_api(live_env: dict[str, str]) -> Iterator[LiveApi]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "info",
    ]
    proc = Proc(argv, live_env)
    try:
        proc.wait_for("Uvicorn running on")
        yield LiveApi(f"http://127.0.0.1:{port}", port, proc)
    finally:
        proc.stop()


@pytest.fixture
def worker(live_env: dict[str, str]) -> Iterator[Proc]:
    argv = [sys.executable, "-m", "workers", "--queues", "synthetic,csv", "--threads", "2"]
    proc = Proc(argv, live_env)
    try:
        proc.wait_for("worker.ready")
        yield proc
    finally:
        proc.stop()


@dataclass(frozen=True)
class CliUser:
    user_id: uuid.UUID
    domain_id: uuid.UUID
    domain_name: str
    key: str


@pytest.fixture
def cli_user(engine: Engine, settings_env: None) -> CliUser:
    from api import security
    from models import tenancy_repo

    name = f"cli{uuid.uuid4().hex[:8]}.example.com"
    with Session(engine) as session, session.begin():
        domain = tenancy_repo.create_domain(session, name, created_by=None)
        user = tenancy_repo.create_user(
            session, email=f"ops@{name}", password_hash=None, signup_domain_id=domain.id
        )
        tenancy_repo.add_membership(session, domain.id, user.id, "manager")
        secret = security.new_api_key()
        tenancy_repo.create_api_key(
            session,
            user_id=user.id,
            domain_id=domain.id,
            name="cli tests",
            prefix=secret.shown_prefix,
            key_hash=secret.hash,
        )
        return CliUser(user.id, domain.id, name, secret.value)


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, live_api: LiveApi, cli_user: CliUser
) -> Iterator[dict[str, str]]:
    """The in-process CLI pointed at the live API with the user's key."""
    from runtime.settings import reset_settings_cache

    monkeypatch.setenv("DASHIN_API_URL", live_api.url)
    monkeypatch.setenv("DASHIN_API_KEY", cli_user.key)
    reset_settings_cache()
    yield {"DASHIN_API_URL": live_api.url, "DASHIN_API_KEY": cli_user.key}
    reset_settings_cache()


@pytest.fixture
def synthetic_source(engine: Engine, cli_user: CliUser) -> uuid.UUID:
    return make_source(engine, cli_user.domain_id, "synthetic", {"total": 200, "page_size": 20})


def await_job_status(db_url: str, job_id: str, statuses: set[str], timeout: float = 60) -> str:
    """Block until the job is in one of `statuses`: LISTEN first, then read, then wait."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("LISTEN job_status")
        row = conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()
        if row and row[0] in statuses:
            return str(row[0])
        for note in conn.notifies(timeout=timeout):
            job, _, status = note.payload.partition(":")
            if job == job_id and status in statuses:
                return status
    raise TimeoutError(f"job {job_id} never reached {sorted(statuses)}")


@pytest.fixture
def api_client_for_bootstrap(settings_env: None) -> Iterator[object]:
    """A TestClient on the real app (the API's own fixtures live in tests/api)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app()) as client:
        yield client
