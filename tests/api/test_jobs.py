"""Jobs: creation with validated params, lifecycle moves (202 / 409 with job_status), enqueue
after commit, filtered lists, the job shape, and row errors as JSON or CSV."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from api import job_moves
from models.campaigns import Campaign
from models.jobs import Job, JobRecordError
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
    field_names,
)

pytestmark = pytest.mark.usefixtures("connectors_registry")

BASE = "/api/v1/jobs"


@pytest.fixture
def team(api_client: TestClient, make_user: MakeUser) -> dict[str, ApiUser]:
    manager = make_user()
    return {
        "manager": manager,
        "member": make_user(manager.domain_name, role="member"),
        "viewer": make_user(manager.domain_name, role="viewer"),
        "admin": make_user(manager.domain_name, role="admin"),
        "outsider": make_user(),
    }


@pytest.fixture
def source(api_client: TestClient, team: dict[str, ApiUser]) -> dict[str, Any]:
    return create_source(api_client, team["manager"])


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> list[tuple[str, str, str]]:
    """Record enqueues, with the job's status as another connection sees it at that moment."""
    calls: list[tuple[str, str, str]] = []

    def record(job_id: uuid.UUID, queue: str) -> None:
        with Session(engine) as session:
            committed = session.scalar(select(Job.status).where(Job.id == job_id))
        calls.append((str(job_id), queue, str(committed)))

    monkeypatch.setattr(job_moves, "enqueue_job", record)
    return calls


def _campaign(engine: Engine, domain_id: uuid.UUID) -> uuid.UUID:
    with Session(engine) as session, session.begin():
        return session.execute(
            insert(Campaign)
            .values(domain_id=domain_id, name="Q3", slug=f"q3-{uuid.uuid4().hex[:6]}")
            .returning(Campaign.id)
        ).scalar_one()


def test_create_job_pending_with_the_documented_shape(
    api_client: TestClient, team: dict[str, ApiUser], source: dict[str, Any], engine: Engine
) -> None:
    member = team["member"]
    campaign_id = _campaign(engine, member.domain_id)
    response = api_client.post(
        BASE,
        json={
            "data_source_id": source["id"],
            "campaign_id": str(campaign_id),
            "params": {"limit": 5},
        },
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "pending"
    assert job["params"] == {"limit": 5}
    assert job["campaign_id"] == str(campaign_id)
    assert job["data_source_id"] == source["id"]
    assert job["domain_id"] == str(member.domain_id)
    assert job["counters"] == dict.fromkeys(
        ("pages", "fetched", "inserted", "updated", "unchanged", "rejected"), 0
    )
    assert job["progress"] == {"done": 0, "total": None, "missed": 0}
    assert job["warnings"] == [] and job["error_code"] is None
    assert job["checkpoint"] is None and job["heartbeat_age_s"] is None
    assert job["schedule_id"] is None and job["error"] is None
    assert api_client.get(f"{BASE}/{job['id']}", headers=team["viewer"].headers).json() == {
        **job,
        "heartbeat_age_s": None,
    }


def test_create_with_start_enqueues_after_commit(
    api_client: TestClient,
    team: dict[str, ApiUser],
    source: dict[str, Any],
    enqueued: list[tuple[str, str, str]],
) -> None:
    response = api_client.post(
        BASE, json={"data_source_id": source["id"], "start": True}, headers=team["member"].headers
    )
    assert response.status_code == 201
    assert response.json()["status"] == "queued"
    # When the message went out, another connection already saw the job queued.
    assert enqueued == [(response.json()["id"], "vault", "queued")]


def test_start_puts_a_message_on_the_real_broker(
    api_client: TestClient, team: dict[str, ApiUser], source: dict[str, Any], redis_url: str
) -> None:
    job = api_client.post(
        BASE, json={"data_source_id": source["id"]}, headers=team["manager"].headers
    ).json()
    started = api_client.post(f"{BASE}/{job['id']}/start", headers=team["manager"].headers)
    assert started.status_code == 202 and started.json()["status"] == "queued"
    client = redis.Redis.from_url(redis_url)
    messages: list[bytes] = client.hvals("dramatiq:vault.msgs")  # type: ignore[assignment]
    assert any(job["id"].encode() in m for m in messages)


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"params": {"limit": 0}}, {"params.limit"}),
        ({"params": {"bogus": True}}, {"params.bogus"}),
        ({"params": {"limit": "many"}}, {"params.limit"}),
        ({"data_source_id": "not-a-uuid"}, {"data_source_id"}),
        ({"data_source_id": None}, {"data_source_id"}),
        ({"data_source_id": str(uuid.uuid4())}, {"data_source_id"}),
        ({"campaign_id": str(uuid.uuid4())}, {"campaign_id"}),
        ({"params": {"file_id": str(uuid.uuid4())}}, {"params.file_id"}),
    ],
)
def test_create_validation_names_the_field(
    api_client: TestClient,
    team: dict[str, ApiUser],
    source: dict[str, Any],
    payload: dict[str, Any],
    fields: set[str],
    engine: Engine,
) -> None:
    body = {"data_source_id": source["id"], **payload}
    response = api_client.post(BASE, json=body, headers=team["member"].headers)
    assert field_names(response) == fields
    with Session(engine) as session:
        assert session.scalar(select(Job.id)) is None  # nothing was written


def test_roles_for_jobs(
    api_client: TestClient, team: dict[str, ApiUser], source: dict[str, Any], engine: Engine
) -> None:
    job_id = create_job(engine, team["manager"].domain_id, source["id"])
    body = {"data_source_id": source["id"]}
    assert api_client.post(BASE, json=body, headers=team["viewer"].headers).status_code == 403
    assert (
        api_client.post(f"{BASE}/{job_id}/start", headers=team["viewer"].headers).status_code == 403
    )
    assert api_client.get(f"{BASE}/{job_id}", headers=team["viewer"].headers).status_code == 200
    assert api_client.post(BASE, json=body, headers=team["admin"].headers).status_code == 201
    assert api_client.get(f"{BASE}/{job_id}", headers=team["outsider"].headers).status_code == 404
    assert (
        api_client.post(f"{BASE}/{job_id}/cancel", headers=team["outsider"].headers).status_code
        == 404
    )
    # A job in another domain cannot be created on this domain's source either.
    foreign = api_client.post(BASE, json=body, headers=team["outsider"].headers)
    assert field_names(foreign) == {"data_source_id"}


def test_lifecycle_moves_answer_202_or_409_with_job_status(
    api_client: TestClient,
    team: dict[str, ApiUser],
    source: dict[str, Any],
    engine: Engine,
    enqueued: list[tuple[str, str, str]],
) -> None:
    member = team["member"]
    job_id = create_job(engine, member.domain_id, source["id"])
    url = f"{BASE}/{job_id}"

    def move(name: str) -> Any:
        return api_client.post(f"{url}/{name}", headers=member.headers)

    assert (started := move("start")).status_code == 202
    assert started.json()["status"] == "queued"
    assert move("pause").json()["status"] == "paused"
    assert move("resume").json()["status"] == "queued"
    assert [status for _, _, status in enqueued] == ["queued", "queued"]  # start and resume
    refused = move("start")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["job_status"] == "queued"
    assert move("cancel").json()["status"] == "cancelled"
    assert move("resume").json()["job_status"] == "cancelled"
    assert len(enqueued) == 2

    running = create_job(engine, member.domain_id, source["id"], moves=("start", "acquire"))
    assert (
        api_client.post(f"{BASE}/{running}/pause", headers=member.headers).json()["status"]
        == "pausing"
    )
    completed = create_job(
        engine, member.domain_id, source["id"], moves=("start", "acquire", "complete")
    )
    resumed = api_client.post(f"{BASE}/{completed}/resume", headers=member.headers)
    assert resumed.status_code == 409 and resumed.json()["job_status"] == "completed"
    failed = create_job(engine, member.domain_id, source["id"], moves=("start", "acquire", "fail"))
    restarted = api_client.post(f"{BASE}/{failed}/start", headers=member.headers)
    assert restarted.status_code == 202 and restarted.json()["error"] is None
    assert (
        api_client.post(f"{BASE}/{uuid.uuid4()}/start", headers=member.headers).status_code == 404
    )


def test_list_filters_and_paginates(
    api_client: TestClient, team: dict[str, ApiUser], source: dict[str, Any], engine: Engine
) -> None:
    manager = team["manager"]
    other = create_source(api_client, manager, name="other")
    campaign_id = _campaign(engine, manager.domain_id)
    pending = create_job(engine, manager.domain_id, source["id"])
    queued = create_job(engine, manager.domain_id, source["id"], moves=("start",))
    in_campaign = create_job(engine, manager.domain_id, other["id"], campaign_id=campaign_id)

    def ids(**params: Any) -> set[str]:
        response = api_client.get(BASE, params=params, headers=manager.headers)
        assert response.status_code == 200, response.text
        return {j["id"] for j in response.json()["items"]}

    assert ids() == {str(pending), str(queued), str(in_campaign)}
    assert ids(status="queued") == {str(queued)}
    assert ids(status=["queued", "pending"], data_source_id=source["id"]) == {
        str(pending),
        str(queued),
    }
    assert ids(campaign_id=str(campaign_id)) == {str(in_campaign)}
    first = api_client.get(BASE, params={"page_size": 2, "count": True}, headers=manager.headers)
    assert first.json()["total"] == 3 and first.json()["next_cursor"]
    asleep = api_client.get(BASE, params={"status": "asleep"}, headers=manager.headers)
    assert field_names(asleep) == {"status.0"}
    assert ids(status="queued", data_source_id=str(uuid.uuid4())) == set()


def test_running_job_shows_heartbeat_age(
    api_client: TestClient, team: dict[str, ApiUser], source: dict[str, Any], engine: Engine
) -> None:
    job_id = create_job(engine, team["manager"].domain_id, source["id"], moves=("start", "acquire"))
    job = api_client.get(f"{BASE}/{job_id}", headers=team["manager"].headers).json()
    assert job["status"] == "running" and job["attempts"] == 1
    assert job["heartbeat_at"] is not None
    assert 0 <= job["heartbeat_age_s"] < 60


def _add_errors(engine: Engine, job_id: uuid.UUID, count: int) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            insert(JobRecordError),
            [
                {
                    "job_id": job_id,
                    "record": i + 1,
                    "line": i + 2,
                    "field": "email",
                    "code": "no_identity",
                    "message": f"row {i + 1}: no email",
                    "raw": f'x{i},"quoted, text"',
                }
                for i in range(count)
            ],
        )


def test_row_errors_as_pages_and_as_csv(
    api_client: TestClient, team: dict[str, ApiUser], source: dict[str, Any], engine: Engine
) -> None:
    viewer = team["viewer"]
    job_id = create_job(engine, viewer.domain_id, source["id"])
    _add_errors(engine, job_id, 5)
    url = f"{BASE}/{job_id}/errors"

    first = api_client.get(url, params={"limit": 3}, headers=viewer.headers)
    assert first.status_code == 200
    assert [e["record"] for e in first.json()["items"]] == [1, 2, 3]
    assert first.json()["items"][0] == {
        "id": first.json()["items"][0]["id"],
        "record": 1,
        "line": 2,
        "field": "email",
        "code": "no_identity",
        "message": "row 1: no email",
        "raw": 'x0,"quoted, text"',
    }
    rest = api_client.get(
        url, params={"limit": 3, "after_id": first.json()["next_cursor"]}, headers=viewer.headers
    )
    assert [e["record"] for e in rest.json()["items"]] == [4, 5]
    assert rest.json()["next_cursor"] is None

    exported = api_client.get(url, params={"format": "csv"}, headers=viewer.headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["record", "line", "field", "code", "message", "raw"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4", "5"]
    assert rows[1][5] == 'x0,"quoted, text"'
    assert (
        api_client.get(f"{BASE}/{uuid.uuid4()}/errors", headers=viewer.headers).status_code == 404
    )
