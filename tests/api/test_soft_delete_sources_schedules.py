"""Soft delete and restore of data sources and schedules: hidden, inert, and back again."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from models.jobs import Job
from scheduler.config import SchedulerConfig
from scheduler.loop import Scheduler
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
)

pytestmark = pytest.mark.usefixtures("connectors_registry")

API = "/api/v1"


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user()


def _ids(client: TestClient, user: ApiUser, path: str, **query: Any) -> set[str]:
    response = client.get(f"{API}/{path}", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def _status(engine: Engine, job_id: uuid.UUID) -> str:
    with Session(engine) as session:
        return str(session.scalar(select(Job.status).where(Job.id == job_id)))


def _scheduler(engine: Engine) -> Scheduler:
    scheduler = Scheduler(
        engine, SchedulerConfig(misfire_grace_s=60), queued_grace_s=60, enqueue=lambda *_: None
    )
    scheduler.resync()
    return scheduler


def test_a_deleted_source_is_hidden_starts_nothing_and_comes_back(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser, engine: Engine
) -> None:
    # Given a source with a pending and a failed job
    source = create_source(api_client, manager)
    url = f"{API}/data-sources/{source['id']}"
    pending = create_job(engine, manager.domain_id, source["id"])
    failed = create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire", "fail"))
    # When it is deleted
    assert api_client.delete(url, headers=manager.headers).status_code == 204
    # Then it is not found, not listed, and no job can be created or (re)started on it
    assert api_client.get(url, headers=manager.headers).status_code == 404
    assert source["id"] not in _ids(api_client, manager, "data-sources")
    create = api_client.post(
        f"{API}/jobs", json={"data_source_id": source["id"]}, headers=manager.headers
    )
    assert create.status_code == 422
    restart = api_client.post(f"{API}/jobs/{failed}/start", headers=manager.headers)
    assert restart.status_code == 409
    assert api_client.patch(url, json={"name": "x"}, headers=manager.headers).status_code == 404
    # And its pending job was cancelled with it (it would otherwise run on a deleted source)
    assert _status(engine, pending) == "cancelled"
    assert _status(engine, failed) == "failed"
    # And managers list it with include_deleted, members may not ask
    listed = api_client.get(
        f"{API}/data-sources", params={"include_deleted": "true"}, headers=manager.headers
    ).json()["items"]
    [gone] = [s for s in listed if s["id"] == source["id"]]
    assert gone["deleted_at"] is not None
    member = make_user(domain_name=manager.domain_name, role="member")
    refused = api_client.get(
        f"{API}/data-sources", params={"include_deleted": "true"}, headers=member.headers
    )
    assert refused.status_code == 403
    # When it is restored, it is back, and the failed job may continue
    restored = api_client.post(f"{url}/restore", headers=manager.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None
    assert source["id"] in _ids(api_client, manager, "data-sources")
    again = api_client.post(f"{API}/jobs/{failed}/start", headers=manager.headers)
    assert again.status_code == 202, again.text


def test_a_source_with_a_running_job_is_not_deleted(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    source = create_source(api_client, manager)
    running = create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire"))
    url = f"{API}/data-sources/{source['id']}"
    refused = api_client.delete(url, headers=manager.headers)
    assert refused.status_code == 409
    assert api_client.get(url, headers=manager.headers).status_code == 200
    assert _status(engine, running) == "running"


def test_a_deleted_schedule_stops_firing_and_restore_brings_it_back(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    source = create_source(api_client, manager)
    created = api_client.post(
        f"{API}/schedules",
        json={"data_source_id": source["id"], "interval_seconds": 600},
        headers=manager.headers,
    )
    assert created.status_code == 201, created.text
    schedule_id = uuid.UUID(created.json()["id"])
    url = f"{API}/schedules/{schedule_id}"
    assert _scheduler(engine).next_slot(schedule_id) is not None

    # When it is deleted: not found, not listed, and the scheduler no longer has it
    assert api_client.delete(url, headers=manager.headers).status_code == 204
    assert api_client.get(url, headers=manager.headers).status_code == 404
    assert str(schedule_id) not in _ids(api_client, manager, "schedules")
    assert str(schedule_id) in _ids(api_client, manager, "schedules", include_deleted="true")
    assert _scheduler(engine).next_slot(schedule_id) is None
    run_now = api_client.post(f"{url}/run-now", headers=manager.headers)
    assert run_now.status_code == 404

    # When restored, it fires again
    restored = api_client.post(f"{url}/restore", headers=manager.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None and restored.json()["next_run_at"] is not None
    assert _scheduler(engine).next_slot(schedule_id) is not None

    # And a schedule of a deleted source is silent until the source comes back
    source_url = f"{API}/data-sources/{source['id']}"
    assert api_client.delete(source_url, headers=manager.headers).status_code == 204
    assert _scheduler(engine).next_slot(schedule_id) is None
    assert api_client.post(f"{url}/run-now", headers=manager.headers).status_code == 409
    assert api_client.post(f"{source_url}/restore", headers=manager.headers).status_code == 200
    assert _scheduler(engine).next_slot(schedule_id) is not None


def test_restore_is_for_the_domains_managers_only(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser
) -> None:
    source = create_source(api_client, manager)
    schedule = api_client.post(
        f"{API}/schedules",
        json={"data_source_id": source["id"], "interval_seconds": 600},
        headers=manager.headers,
    ).json()
    schedule_url = f"{API}/schedules/{schedule['id']}"
    source_url = f"{API}/data-sources/{source['id']}"
    assert api_client.delete(schedule_url, headers=manager.headers).status_code == 204
    assert api_client.delete(source_url, headers=manager.headers).status_code == 204

    member = make_user(domain_name=manager.domain_name, role="member")
    stranger = make_user()
    for url in (schedule_url, source_url):
        assert api_client.post(f"{url}/restore", headers=member.headers).status_code == 403
        # another domain's manager: not found, exactly like a source that does not exist
        assert api_client.post(f"{url}/restore", headers=stranger.headers).status_code == 404
    assert source["id"] not in _ids(api_client, stranger, "data-sources", include_deleted="true")
    assert api_client.get(source_url, headers=manager.headers).status_code == 404
