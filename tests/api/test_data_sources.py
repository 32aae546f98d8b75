"""Data sources: CRUD with encrypted write-only secrets, connection tests, file uploads, jobs."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from api import source_checks
from api.check_context import CheckContext
from models.sources import DataSource, Upload, UploadChunk
from runtime.crypto import decrypt_json
from runtime.settings import get_settings, reset_settings_cache
from tests.api.conftest import MakeUser
from tests.api.helpers import (
    HANG,
    HEADER_SECRET,
    SECRET,
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
    field_names,
    move_job,
    run_in_process,
)

pytestmark = pytest.mark.usefixtures("connectors_registry")

BASE = "/api/v1/data-sources"


def _raw_row(engine: Engine, source_id: str) -> DataSource:
    with Session(engine) as session:
        source = session.get(DataSource, uuid.UUID(source_id))
        assert source is not None
        session.expunge(source)
        return source


def _multipart(filename: str, data: bytes, field: str = "file") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# ---- create / read / update / delete -------------------------------------------------------


def test_create_stores_secrets_encrypted_and_never_shows_them(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    response = api_client.post(
        BASE,
        json={
            "type": "vault",
            "name": "Vault EU",
            "config": {"api_key": SECRET, "headers": {"X-Key": HEADER_SECRET}, "region": "us"},
        },
        headers=manager.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert SECRET not in response.text and HEADER_SECRET not in response.text
    assert body["secrets_set"] == ["api_key", "headers"]
    assert body["config"] == {"region": "us"}
    assert body["type"] == "vault" and body["domain_id"] == str(manager.domain_id)
    assert body["sync_state"] == {}
    assert body["metrics"] == {
        "jobs_total": 0,
        "jobs_failed": 0,
        "leads_total": 0,
        "last_run_at": None,
        "last_success_at": None,
        "last_error": None,
        "last_warnings": [],
    }
    # Stored: the public config holds no secret, the credentials column is ciphertext.
    row = _raw_row(engine, body["id"])
    assert row.credentials is not None
    assert SECRET.encode() not in bytes(row.credentials)
    assert SECRET not in str(row.config)
    key = get_settings().require_secret_key()
    assert decrypt_json(key, row.credentials) == {
        "api_key": SECRET,
        "headers": {"X-Key": HEADER_SECRET},
    }
    # Read back: still no secret, in the item and in the list.
    for url in (f"{BASE}/{body['id']}", BASE):
        again = api_client.get(url, headers=manager.headers)
        assert again.status_code == 200
        assert SECRET not in again.text and HEADER_SECRET not in again.text
    assert api_client.get(f"{BASE}/{body['id']}", headers=manager.headers).json() == body


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"type": "nope", "name": "x", "config": {}}, {"type"}),
        ({"type": "vault", "name": "x", "config": {}}, {"config.api_key"}),
        (
            {"type": "vault", "name": "x", "config": {"api_key": SECRET, "bogus": 1}},
            {"config.bogus"},
        ),
        (
            {"type": "vault", "name": "x", "config": {"api_key": SECRET, "max_pages": 0}},
            {"config.max_pages"},
        ),
        ({"type": "vault", "config": {"api_key": "k"}}, {"name"}),
        (
            {"type": "csv", "name": "x", "config": {"file_id": str(uuid.uuid4())}},
            {"config.file_id"},
        ),
    ],
)
def test_create_validation_names_the_field(
    api_client: TestClient, make_user: MakeUser, payload: dict[str, Any], fields: set[str]
) -> None:
    manager = make_user()
    response = api_client.post(BASE, json=payload, headers=manager.headers)
    assert field_names(response) == fields
    assert SECRET not in response.text  # a rejected config is never echoed back


def test_roles_for_data_sources(api_client: TestClient, make_user: MakeUser) -> None:
    manager = make_user()
    member = make_user(manager.domain_name, role="member")
    viewer = make_user(manager.domain_name, role="viewer")
    admin = make_user(manager.domain_name, role="admin")
    outsider = make_user()
    source = create_source(api_client, manager)
    url = f"{BASE}/{source['id']}"
    payload = {"type": "vault", "name": "y", "config": {"api_key": "k"}}

    for user in (member, viewer):
        assert api_client.post(BASE, json=payload, headers=user.headers).status_code == 403
        assert api_client.patch(url, json={"name": "z"}, headers=user.headers).status_code == 403
        assert api_client.delete(url, headers=user.headers).status_code == 403
        assert api_client.get(url, headers=user.headers).status_code == 200
        assert api_client.get(BASE, headers=user.headers).json()["items"][0]["id"] == source["id"]
    assert api_client.post(f"{url}/test", headers=viewer.headers).status_code == 403
    assert api_client.post(f"{url}/test", headers=member.headers).status_code == 200
    # A platform admin acts in any domain; a non-member sees nothing at all.
    assert api_client.post(BASE, json=payload, headers=admin.headers).status_code == 201
    assert api_client.get(url, headers=outsider.headers).status_code == 404
    assert api_client.get(BASE, headers=outsider.headers).json()["items"] == []


def test_get_missing_source_is_404(api_client: TestClient, make_user: MakeUser) -> None:
    manager = make_user()
    missing = f"{BASE}/{uuid.uuid4()}"
    assert api_client.get(missing, headers=manager.headers).status_code == 404
    assert api_client.patch(missing, json={"name": "x"}, headers=manager.headers).status_code == 404
    assert api_client.delete(missing, headers=manager.headers).status_code == 404
    assert api_client.post(f"{missing}/test", headers=manager.headers).status_code == 404
    assert api_client.get(f"{missing}/jobs", headers=manager.headers).status_code == 404
    body, content_type = _multipart("a.csv", b"x")
    upload = api_client.post(
        f"{missing}/files", content=body, headers={**manager.headers, "Content-Type": content_type}
    )
    assert upload.status_code == 404


def test_list_paginates_and_counts(api_client: TestClient, make_user: MakeUser) -> None:
    manager = make_user()
    ids = {create_source(api_client, manager, name=f"s{i}")["id"] for i in range(3)}
    first = api_client.get(BASE, params={"page_size": 2, "count": "true"}, headers=manager.headers)
    assert first.status_code == 200
    assert first.json()["total"] == 3 and len(first.json()["items"]) == 2
    second = api_client.get(
        BASE,
        params={"page_size": 2, "cursor": first.json()["next_cursor"]},
        headers=manager.headers,
    )
    seen = {s["id"] for s in first.json()["items"]} | {s["id"] for s in second.json()["items"]}
    assert seen == ids and second.json()["next_cursor"] is None


def test_patch_keeps_secrets_not_given_and_null_clears(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    source = create_source(api_client, manager)
    url = f"{BASE}/{source['id']}"
    key = get_settings().require_secret_key()

    renamed = api_client.patch(
        url, json={"name": "Renamed", "config": {"region": "ap"}}, headers=manager.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Renamed"
    assert renamed.json()["config"] == {"region": "ap"}
    assert renamed.json()["secrets_set"] == ["api_key"]
    assert decrypt_json(key, _raw_row(engine, source["id"]).credentials)["api_key"] == SECRET

    added = api_client.patch(
        url, json={"config": {"headers": {"X": HEADER_SECRET}}}, headers=manager.headers
    )
    assert added.json()["secrets_set"] == ["api_key", "headers"]
    assert HEADER_SECRET not in added.text

    cleared = api_client.patch(url, json={"config": {"headers": None}}, headers=manager.headers)
    assert cleared.json()["secrets_set"] == ["api_key"]
    assert "headers" not in decrypt_json(key, _raw_row(engine, source["id"]).credentials)

    # api_key is required: clearing it is refused and changes nothing.
    refused = api_client.patch(url, json={"config": {"api_key": None}}, headers=manager.headers)
    assert field_names(refused) == {"config.api_key"}
    assert decrypt_json(key, _raw_row(engine, source["id"]).credentials)["api_key"] == SECRET

    rotated = api_client.patch(url, json={"config": {"api_key": "good"}}, headers=manager.headers)
    assert rotated.status_code == 200
    assert decrypt_json(key, _raw_row(engine, source["id"]).credentials)["api_key"] == "good"
    bad = api_client.patch(url, json={"config": {"region": 5}}, headers=manager.headers)
    assert field_names(bad) == {"config.region"}
    assert api_client.patch(url, json={"name": ""}, headers=manager.headers).status_code == 422


def test_delete_refuses_while_a_job_is_live(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    source = create_source(api_client, manager)
    url = f"{BASE}/{source['id']}"
    job_id = create_job(engine, manager.domain_id, source["id"], moves=("start",))

    conflict = api_client.delete(url, headers=manager.headers)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"

    api_client.post(f"/api/v1/jobs/{job_id}/cancel", headers=manager.headers)
    assert api_client.delete(url, headers=manager.headers).status_code == 204
    assert api_client.get(url, headers=manager.headers).status_code == 404


def test_metrics_carry_the_last_jobs_records_rejected_warning(
    api_client: TestClient, make_user: MakeUser, engine: Engine, redis_url: str
) -> None:
    # Given a CSV source whose upload has three good rows and two with no email or LinkedIn URL
    manager = make_user()
    source = create_source(api_client, manager, type_="csv", name="list")
    rows = "First Name,Email\nAna,ana@acme.example\nBo,\nCy,cy@acme.example\nDi,\n"
    rows += "Ed,ed@acme.example\n"
    body, content_type = _multipart("people.csv", rows.encode())
    upload = api_client.post(
        f"{BASE}/{source['id']}/files",
        content=body,
        headers={**manager.headers, "Content-Type": content_type},
    )
    assert upload.status_code == 201, upload.text
    created = api_client.post(
        "/api/v1/jobs",
        json={"data_source_id": source["id"], "params": {"file_id": upload.json()["id"]}},
        headers=manager.headers,
    )
    assert created.status_code == 201, created.text
    job_id = uuid.UUID(created.json()["id"])
    # When the job runs to its end, as a worker would
    move_job(engine, job_id, "start")
    assert run_in_process(engine, redis_url, job_id) == "completed"
    # Then the source's metrics carry the job's records_rejected warning with its count
    job = api_client.get(f"/api/v1/jobs/{job_id}", headers=manager.headers).json()
    metrics = api_client.get(f"{BASE}/{source['id']}", headers=manager.headers).json()["metrics"]
    [warning] = metrics["last_warnings"]
    assert (warning["code"], warning["count"]) == ("records_rejected", 2)
    assert warning["message"].startswith("2 of 5 fetched records were rejected")
    assert metrics["last_warnings"] == job["warnings"]
    assert (metrics["jobs_total"], metrics["jobs_failed"], metrics["leads_total"]) == (1, 0, 3)


def test_source_jobs_lists_only_that_sources_jobs(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    one = create_source(api_client, manager, name="one")
    two = create_source(api_client, manager, name="two")
    mine = {str(create_job(engine, manager.domain_id, one["id"])) for _ in range(2)}
    create_job(engine, manager.domain_id, two["id"])
    listed = api_client.get(f"{BASE}/{one['id']}/jobs", headers=manager.headers)
    assert listed.status_code == 200
    assert {j["id"] for j in listed.json()["items"]} == mine


# ---- connectors ----------------------------------------------------------------------------


def test_connectors_list_schemas_with_write_only_secrets(
    api_client: TestClient, make_user: MakeUser
) -> None:
    viewer = make_user(role="viewer")
    response = api_client.get("/api/v1/connectors", headers=viewer.headers)
    assert response.status_code == 200
    items = {c["type"]: c for c in response.json()["items"]}
    assert {"vault", "csv", "synthetic"} <= items.keys()
    api_key = items["vault"]["config_schema"]["properties"]["api_key"]
    assert api_key["format"] == "password" and api_key["writeOnly"] is True
    assert "limit" in items["vault"]["params_schema"]["properties"]
    assert api_client.get("/api/v1/connectors").status_code == 401


# ---- connection test -----------------------------------------------------------------------


def test_check_reports_ok_with_sample_and_bad_credentials(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    good = create_source(api_client, manager, config={"api_key": "good"})
    bad = create_source(api_client, manager, config={"api_key": "wrong"})

    ok = api_client.post(f"{BASE}/{good['id']}/test", headers=manager.headers)
    assert ok.status_code == 200
    assert ok.json()["ok"] is True and ok.json()["reason"] is None
    emails = [lead["email"] for lead in ok.json()["sample"]]
    assert len(emails) == 3 and emails[0].startswith("person0.")

    refused = api_client.post(f"{BASE}/{bad['id']}/test", headers=manager.headers)
    assert refused.json() == {
        "ok": False,
        "reason": "bad_credentials",
        "message": "the provider refused the API key",
        "sample": [],
    }


def test_check_answers_after_its_deadline(
    api_client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = make_user()
    source = create_source(api_client, manager, config={"api_key": "hang"})
    monkeypatch.setattr(source_checks, "CHECK_TIMEOUT_S", 0.3)
    HANG.clear()
    try:
        response = api_client.post(f"{BASE}/{source['id']}/test", headers=manager.headers)
    finally:
        HANG.set()  # release the abandoned thread
    assert response.status_code == 200
    assert response.json()["ok"] is False and response.json()["reason"] == "unreachable"


def test_csv_check_reads_the_latest_upload(
    api_client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the check's RunContext, as a job reads it: no temporary copy."""
    opened: list[str] = []
    real_open = CheckContext.open_upload

    def spy(ctx: CheckContext, file_id: str) -> IO[bytes]:
        opened.append(file_id)
        return real_open(ctx, file_id)

    monkeypatch.setattr(CheckContext, "open_upload", spy)
    monkeypatch.setattr(tempfile, "mkstemp", None)  # any copy to disk would now fail
    manager = make_user()
    source = create_source(api_client, manager, type_="csv", name="list")
    empty = api_client.post(f"{BASE}/{source['id']}/test", headers=manager.headers)
    assert empty.json()["ok"] is True and empty.json()["sample"] == []

    for email in ("old@acme.example", "new@acme.example"):
        body, content_type = _multipart("leads.csv", f"email,first_name\n{email},Ann\n".encode())
        stored = api_client.post(
            f"{BASE}/{source['id']}/files",
            content=body,
            headers={**manager.headers, "Content-Type": content_type},
        )
        assert stored.status_code == 201, stored.text
    checked = api_client.post(f"{BASE}/{source['id']}/test", headers=manager.headers)
    assert checked.json()["ok"] is True, checked.text
    assert [lead["email"] for lead in checked.json()["sample"]] == ["new@acme.example"]
    assert opened == [stored.json()["id"]]  # the newest upload, opened once


# ---- uploads -------------------------------------------------------------------------------


def test_upload_is_stored_in_chunks_with_size_and_sha256(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    member = make_user(make_user().domain_name, role="member")
    manager = make_user(member.domain_name)
    source = create_source(api_client, manager, type_="csv", name="list")
    data = bytes(range(256)) * (10 * 1024 + 7)  # ~2.5 MiB: three chunks
    body, content_type = _multipart("big.csv", data)
    response = api_client.post(
        f"{BASE}/{source['id']}/files",
        content=body,
        headers={**member.headers, "Content-Type": content_type},
    )
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["filename"] == "big.csv"
    assert out["size"] == len(data)
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    with Session(engine) as session:
        chunks = list(
            session.scalars(
                select(UploadChunk.data)
                .where(UploadChunk.upload_id == uuid.UUID(out["id"]))
                .order_by(UploadChunk.seq)
            )
        )
    assert [len(c) for c in chunks] == [1 << 20, 1 << 20, len(data) - 2 * (1 << 20)]
    assert b"".join(chunks) == data


@pytest.fixture
def small_upload_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("DASHIN_UPLOAD_MAX_BYTES", "1000")
    reset_settings_cache()
    yield 1000
    reset_settings_cache()


def _upload_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Upload)) or 0)


def test_upload_over_the_limit_is_413_and_leaves_nothing(
    api_client: TestClient, make_user: MakeUser, engine: Engine, small_upload_limit: int
) -> None:
    manager = make_user()
    source = create_source(api_client, manager, type_="csv", name="list")
    url = f"{BASE}/{source['id']}/files"
    body, content_type = _multipart("big.csv", b"x" * (small_upload_limit + 1))

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while parsing
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    streamed = api_client.post(
        url, content=chunked(), headers={**manager.headers, "Content-Type": content_type}
    )
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"
    assert streamed.json()["limit_bytes"] == small_upload_limit

    declared, declared_type = _multipart("huge.csv", b"x" * (small_upload_limit + 70_000))
    early = api_client.post(
        url, content=declared, headers={**manager.headers, "Content-Type": declared_type}
    )
    assert early.status_code == 413
    assert _upload_count(engine) == 0

    fits, fits_type = _multipart("ok.csv", b"x" * small_upload_limit)
    ok = api_client.post(url, content=fits, headers={**manager.headers, "Content-Type": fits_type})
    assert ok.status_code == 201 and ok.json()["size"] == small_upload_limit


def test_upload_needs_a_multipart_file_field(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    viewer = make_user(manager.domain_name, role="viewer")
    source = create_source(api_client, manager, type_="csv", name="list")
    url = f"{BASE}/{source['id']}/files"
    plain = api_client.post(
        url, content=b"a,b", headers={**manager.headers, "Content-Type": "text/csv"}
    )
    assert field_names(plain) == {"file"}
    body, content_type = _multipart("a.csv", b"a,b", field="other")
    wrong = api_client.post(
        url, content=body, headers={**manager.headers, "Content-Type": content_type}
    )
    assert field_names(wrong) == {"file"}
    body, content_type = _multipart("a.csv", b"a,b")
    denied = api_client.post(
        url, content=body, headers={**viewer.headers, "Content-Type": content_type}
    )
    assert denied.status_code == 403
    assert _upload_count(engine) == 0
