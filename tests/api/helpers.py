"""Shared helpers for the data-source, job, log, schedule and isolation API tests.

`vault` is a test connector with a secret (`api_key`), a secret map (`headers`) and plain fields,
whose `check` is scripted by the key: "good" passes with sample leads, "hang" blocks until the
test releases it (to test the check deadline), anything else is refused as bad credentials.
Jobs are created and moved straight through the repositories: no worker is needed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import Field, SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from connectors import registry
from connectors.base import (
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorParams,
    Page,
    RunContext,
)
from connectors.errors import AuthError
from connectors.providers.synthetic import synthetic_lead
from models import job_states, jobs_repo
from models.job_logs import LogLine
from models.job_states import append_log as append
from tests.api.conftest import ApiUser

SECRET = "sk-live-TOPSECRET-7f3a9c"
HEADER_SECRET = "hdr-SECRET-91be"
HANG = threading.Event()


class VaultConfig(ConnectorConfig):
    api_key: SecretStr
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    base_url: str = "https://vault.example"
    region: str = "eu"
    max_pages: int = Field(10, ge=1)


class VaultParams(ConnectorParams):
    limit: int = Field(10, ge=1, le=100)
    file_id: str | None = None


class VaultConnector(Connector):
    type = "vault"
    Config = VaultConfig
    Params = VaultParams

    def check(self, config: VaultConfig) -> CheckResult:
        key = config.api_key.get_secret_value()
        if key == "hang":
            HANG.wait(30)
            return CheckResult(ok=True, message="released")
        if key not in ("good", SECRET):
            raise AuthError("the provider refused the API key")
        return CheckResult(
            ok=True, message="connected", sample=[synthetic_lead(i) for i in range(3)]
        )

    def pages(
        self,
        config: VaultConfig,
        params: VaultParams,
        checkpoint: dict[str, Any] | None,
        ctx: RunContext,
    ) -> Iterator[Page]:
        yield Page(records=[], checkpoint={})


@pytest.fixture
def connectors_registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[Connector]]:
    """The installed connectors plus `vault`."""
    found: dict[str, type[Connector]] = {**registry.available(), "vault": VaultConnector}
    monkeypatch.setattr(registry, "available", lambda: found)
    return found


def create_source(
    client: TestClient,
    user: ApiUser,
    *,
    type_: str = "vault",
    name: str = "Vault",
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if config is None:
        config = {"api_key": SECRET, "region": "us"} if type_ == "vault" else {}
    response = client.post(
        "/api/v1/data-sources",
        json={"type": type_, "name": name, "config": config},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def create_job(
    engine: Engine,
    domain_id: uuid.UUID,
    source_id: uuid.UUID | str,
    *,
    moves: tuple[str, ...] = (),
    campaign_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A job row, moved through `moves` (start, acquire, complete, fail, pause, cancel ...)."""
    with Session(engine) as session, session.begin():
        job = jobs_repo.create_job(
            session,
            domain_id=domain_id,
            data_source_id=uuid.UUID(str(source_id)),
            campaign_id=campaign_id,
        )
        assert job is not None
        job_id = job.id
    for move in moves:
        move_job(engine, job_id, move)
    return job_id


def move_job(engine: Engine, job_id: uuid.UUID, move: str) -> None:
    with Session(engine) as session, session.begin():
        if move == "acquire":
            assert job_states.acquire(session, job_id, max_attempts=5) is not None
            return
        lease = jobs_repo.get_job(session, job_id).lease
        if move == "complete":
            assert job_states.finish(session, job_id, lease) is not None
        elif move == "fail":
            assert job_states.finish(session, job_id, lease, error="boom") is not None
        elif move == "settle":
            assert job_states.settle_after_page(session, job_id, lease) is not None
        else:
            getattr(job_states, move)(session, job_id)


def add_logs(engine: Engine, job_id: uuid.UUID, count: int, *, start: int = 0) -> int:
    """Append `count` info lines in one committed transaction; returns the last seq."""
    with Session(engine) as session, session.begin():
        last = append(
            session,
            job_id,
            [LogLine("info", "test.line", f"line {start + i}") for i in range(count)],
        )
    assert last is not None
    return last


def field_names(response: Any) -> set[str]:
    """The `field` of every error in a 422 problem."""
    assert response.status_code == 422, response.text
    return {e["field"] for e in response.json()["errors"]}


def listener_backends(engine: Engine) -> list[int]:
    """The PostgreSQL backends of the API's LISTEN connections (`api.listener`) on this database."""
    with engine.connect() as conn:
        return list(
            conn.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE application_name = 'dashin-api-listener'"
                    " AND datname = current_database()"
                )
            )
        )


def run_in_process(engine: Engine, redis_url: str, job_id: uuid.UUID) -> str:
    """Run a started job to its end in this process, as a worker would; its outcome."""
    import redis

    from runtime.settings import get_settings
    from workers.runner import Runner

    client = redis.Redis.from_url(redis_url)
    try:
        return Runner(engine, get_settings(), client, threading.Event()).run(job_id)
    finally:
        client.close()
