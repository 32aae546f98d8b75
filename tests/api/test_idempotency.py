"""`Idempotency-Key`: a retried POST replays its first answer and does the work once, against
the real PostgreSQL (the keys live there) — reuse with another body is 422, a request still in
flight is 409, and keys are scoped to the principal and the domain."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from api import job_inputs, job_moves
from models import idempotency
from models.idempotency import IdempotencyKey
from models.jobs import Job
from models.sources import Upload
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import connectors_registry, create_source  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("connectors_registry")

JOBS = "/api/v1/jobs"


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    monkeypatch.setattr(job_moves, "enqueue_job", lambda job_id, _queue: sent.append(str(job_id)))
    return sent


def _jobs(engine: Engine, domain_id: uuid.UUID) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count(Job.id)).where(Job.domain_id == domain_id)))


def _post(client: TestClient, user: ApiUser, key: str, body: dict[str, Any]) -> Any:
    return client.post(JOBS, json=body, headers={**user.headers, "Idempotency-Key": key})


def test_a_retried_post_jobs_replays_the_first_answer_and_makes_one_job(
    api_client: TestClient, make_user: MakeUser, engine: Engine, enqueued: list[str]
) -> None:
    user = make_user()
    source = create_source(api_client, user)
    body = {"data_source_id": source["id"], "start": True}

    first = _post(api_client, user, "retry-1", body)
    again = _post(api_client, user, "retry-1", body)

    assert first.status_code == 201, first.text
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _jobs(engine, user.domain_id) == 1
    assert enqueued == [first.json()["id"]]  # started and enqueued once


def test_a_replayed_move_does_not_move_the_job_again(
    api_client: TestClient, make_user: MakeUser, enqueued: list[str]
) -> None:
    user = make_user()
    source = create_source(api_client, user)
    job = api_client.post(JOBS, json={"data_source_id": source["id"]}, headers=user.headers)
    start = f"{JOBS}/{job.json()['id']}/start"
    headers = {**user.headers, "Idempotency-Key": "start-once"}

    first = api_client.post(start, headers=headers)
    again = api_client.post(start, headers=headers)
    fresh = api_client.post(start, headers={**user.headers, "Idempotency-Key": "another"})

    assert first.status_code == 202 and first.json()["status"] == "queued"
    assert (again.status_code, again.content) == (202, first.content)  # not 409: replayed
    assert fresh.status_code == 409 and fresh.json()["job_status"] == "queued"
    assert len(enqueued) == 1


def test_the_same_key_with_another_body_is_refused_naming_the_header(
    api_client: TestClient, make_user: MakeUser, engine: Engine, enqueued: list[str]
) -> None:
    user = make_user()
    source = create_source(api_client, user)
    assert _post(api_client, user, "k", {"data_source_id": source["id"]}).status_code == 201

    reused = _post(api_client, user, "k", {"data_source_id": source["id"], "start": True})
    other_route = api_client.post(
        "/api/v1/campaigns", json={"name": "Q1"}, headers={**user.headers, "Idempotency-Key": "k"}
    )

    for response in (reused, other_route):
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"] == "urn:dashin:problem:idempotency_key_reused"
        assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert _jobs(engine, user.domain_id) == 1 and enqueued == []


def test_a_request_still_in_flight_answers_409_then_the_first_answer_replays(
    api_client: TestClient,
    make_user: MakeUser,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = make_user()
    source = create_source(api_client, user)
    body = {"data_source_id": source["id"], "start": True}
    in_route, release = threading.Event(), threading.Event()

    checked = job_inputs.validate_params

    def slow_check(*args: Any) -> Any:
        in_route.set()
        assert release.wait(30)
        return checked(*args)

    # (not a slow enqueue: that now runs after the commit, when the answer is already kept)
    monkeypatch.setattr(job_inputs, "validate_params", slow_check)
    with ThreadPoolExecutor(1) as pool:
        # Given a first request that is still working (checking its params)
        first = pool.submit(_post, api_client, user, "slow", body)
        assert in_route.wait(30)
        # When the client retries with the same key
        concurrent = _post(api_client, user, "slow", body)
        release.set()
        answered = first.result(30)
    # Then the retry is told to wait, and once the first answered, it replays that answer
    assert concurrent.status_code == 409, concurrent.text
    assert concurrent.json()["type"] == "urn:dashin:problem:idempotency_key_in_flight"
    assert answered.status_code == 201
    later = _post(api_client, user, "slow", body)
    assert (later.status_code, later.content) == (201, answered.content)
    assert _jobs(engine, user.domain_id) == 1


def test_keys_are_per_principal_and_per_domain(
    api_client: TestClient, make_user: MakeUser, engine: Engine, enqueued: list[str]
) -> None:
    manager = make_user()
    member = make_user(manager.domain_name, role="member")
    outsider = make_user()
    source = create_source(api_client, manager)
    other_source = create_source(api_client, outsider)

    mine = _post(api_client, manager, "shared-key", {"data_source_id": source["id"]})
    colleague = _post(api_client, member, "shared-key", {"data_source_id": source["id"]})
    tenant = _post(api_client, outsider, "shared-key", {"data_source_id": other_source["id"]})

    assert [r.status_code for r in (mine, colleague, tenant)] == [201, 201, 201]
    assert len({r.json()["id"] for r in (mine, colleague, tenant)}) == 3
    assert _jobs(engine, manager.domain_id) == 2 and _jobs(engine, outsider.domain_id) == 1


def test_a_failed_request_keeps_nothing_and_a_retry_runs(
    api_client: TestClient, make_user: MakeUser, engine: Engine, enqueued: list[str]
) -> None:
    user = make_user()
    viewer = make_user(user.domain_name, role="viewer")
    source = create_source(api_client, user)
    body = {"data_source_id": source["id"]}

    missing = _post(api_client, user, "k1", {"data_source_id": str(uuid.uuid4())})
    forbidden = _post(api_client, viewer, "k1", body)

    assert missing.status_code == 422 and forbidden.status_code == 403
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    assert _post(api_client, user, "k1", body).status_code == 201


def test_a_malformed_key_is_a_422_naming_the_header(
    api_client: TestClient, make_user: MakeUser, enqueued: list[str]
) -> None:
    user = make_user()
    source = create_source(api_client, user)
    response = _post(api_client, user, "x" * 256, {"data_source_id": source["id"]})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]


def test_expired_keys_run_again_and_are_purged(
    api_client: TestClient, make_user: MakeUser, engine: Engine, enqueued: list[str]
) -> None:
    user = make_user()
    source = create_source(api_client, user)
    body = {"data_source_id": source["id"]}
    first = _post(api_client, user, "old", body)
    _post(api_client, user, "fresh", body)
    with Session(engine) as session, session.begin():
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    again = _post(api_client, user, "old", body)
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]

    with Session(engine) as session, session.begin():
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        assert idempotency.purge_expired(session) == 1
        assert session.scalars(select(IdempotencyKey.key)).all() == ["fresh"]


def _csv_upload(data: bytes) -> tuple[bytes, str]:
    """A multipart body as clients build it: a fresh random boundary per attempt."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="leads.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_retried_upload_stores_one_file(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    user = make_user()
    source = create_source(api_client, user, type_="csv", name="list")
    url = f"/api/v1/data-sources/{source['id']}/files"

    def upload(key: str, data: bytes) -> Any:
        body, content_type = _csv_upload(data)
        headers = {**user.headers, "Content-Type": content_type, "Idempotency-Key": key}
        return api_client.post(url, content=body, headers=headers)

    first = upload("up-1", b"email\nann@x.example\n")
    retried = upload("up-1", b"email\nann@x.example\n")  # another boundary, the same file
    other = upload("up-1", b"email\nbob@x.example\nzed@x.example\n")

    assert first.status_code == 201, first.text
    assert (retried.status_code, retried.content) == (201, first.content)
    assert retried.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422  # another size: another request
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Upload)) == 1


#: every other creating POST: (path, body, list path), `{campaign}` / `{source}` filled in
CREATES = [
    ("/api/v1/campaigns", {"name": "Once"}, "/api/v1/campaigns"),
    ("/api/v1/leads", {"email": "once@example.com"}, "/api/v1/leads"),
    ("/api/v1/data-sources", {"type": "csv", "name": "Once", "config": {}}, "/api/v1/data-sources"),
    ("/api/v1/clients", {"name": "Once Ltd"}, "/api/v1/clients"),
    (
        "/api/v1/campaigns/{campaign}/links",
        {
            "destination_url": "https://example.com/once",
            "utm_source": "once",
            "utm_medium": "email",
        },
        "/api/v1/campaigns/{campaign}/links",
    ),
    (
        "/api/v1/schedules",
        {"data_source_id": "{source}", "cron": "0 7 * * *", "name": "Once"},
        "/api/v1/schedules",
    ),
    (
        "/api/v1/webhooks",
        {"url": "http://127.0.0.1:9/once", "events": ["job.failed"]},
        "/api/v1/webhooks",
    ),
]


@pytest.mark.parametrize(("path", "body", "listed"), CREATES, ids=[c[0] for c in CREATES])
def test_every_creating_post_replays_and_creates_once(
    api_client: TestClient,
    make_user: MakeUser,
    path: str,
    body: dict[str, Any],
    listed: str,
) -> None:
    user = make_user()
    campaign = api_client.post("/api/v1/campaigns", json={"name": "C"}, headers=user.headers)
    source = create_source(api_client, user)
    ids = {"campaign": campaign.json()["id"], "source": source["id"]}
    path, listed = path.format(**ids), listed.format(**ids)
    body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    before = len(api_client.get(listed, headers=user.headers).json()["items"])
    headers = {**user.headers, "Idempotency-Key": "create-once"}

    first = api_client.post(path, json=body, headers=headers)
    again = api_client.post(path, json=body, headers=headers)

    assert first.status_code == 201, first.text
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    after = api_client.get(listed, headers=user.headers).json()["items"]
    assert len(after) == before + 1
