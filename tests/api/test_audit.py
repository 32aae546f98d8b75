"""The audit log through the API: who changed what, when, from which request; field names only,
in the change's own transaction; managers of the domain only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    SECRET,
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
)

pytestmark = pytest.mark.usefixtures("connectors_registry")

API = "/api/v1"


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user()


def _audit(client: TestClient, user: ApiUser, **query: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/audit", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_data_source_lifecycle_is_audited_with_field_names_never_values(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    # Given a source created, its config changed, deleted and restored, each with a request id
    created = api_client.post(
        f"{API}/data-sources",
        json={"type": "vault", "name": "Vault", "config": {"api_key": SECRET, "region": "us"}},
        headers={**manager.headers, "X-Request-ID": "req-create-1"},
    )
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    url = f"{API}/data-sources/{source_id}"
    patched = api_client.patch(
        url, json={"config": {"region": "eu"}}, headers={**manager.headers, "X-Request-ID": "r-2"}
    )
    assert patched.status_code == 200, patched.text
    assert api_client.delete(url, headers=manager.headers).status_code == 204
    assert api_client.post(f"{url}/restore", headers=manager.headers).status_code == 200

    # Then the audit, newest first, has one row per change, by this manager
    rows = _audit(api_client, manager, entity="data_source", entity_id=source_id)
    assert [r["action"] for r in rows] == ["restore", "delete", "update", "create"]
    create = rows[-1]
    assert create["fields"] == ["config.api_key", "config.region", "name", "type"]
    assert create["request_id"] == "req-create-1" and rows[-2]["request_id"] == "r-2"
    assert rows[-2]["fields"] == ["config.region"]
    assert {(r["actor_user_id"], r["actor_role"], r["count"]) for r in rows} == {
        (str(manager.user_id), "manager", 1)
    }
    # And no value reached the trail: neither the secret nor the region
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT audit_log::text FROM audit_log WHERE entity_id = :id"), {"id": source_id}
        ).all()
    assert len(stored) == 4
    assert all(SECRET not in row[0] and "'us'" not in row[0] for row in stored)


def test_filters_and_cursor_pagination(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser
) -> None:
    other = make_user(domain_name=manager.domain_name, role="manager")
    for name in ("a", "b", "c"):
        response = api_client.post(f"{API}/campaigns", json={"name": name}, headers=manager.headers)
        assert response.status_code == 201
    by_other = api_client.post(f"{API}/campaigns", json={"name": "d"}, headers=other.headers)
    assert by_other.status_code == 201

    assert len(_audit(api_client, manager, entity="campaign")) == 4
    mine = _audit(api_client, manager, entity="campaign", actor=str(manager.user_id))
    assert len(mine) == 3
    [theirs] = _audit(api_client, manager, actor=str(other.user_id))
    assert theirs["entity_id"] == by_other.json()["id"]
    assert _audit(api_client, manager, action="delete") == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _audit(api_client, manager, **{"from": future}) == []
    assert len(_audit(api_client, manager, entity="campaign", to=future)) == 4

    # pages of 3 then 1, no row twice
    first = api_client.get(
        f"{API}/audit", params={"entity": "campaign", "page_size": 3}, headers=manager.headers
    ).json()
    second = api_client.get(
        f"{API}/audit",
        params={"entity": "campaign", "page_size": 3, "cursor": first["next_cursor"]},
        headers=manager.headers,
    ).json()
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 4 and second["next_cursor"] is None


def test_only_the_domains_managers_read_it(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser
) -> None:
    api_client.post(f"{API}/campaigns", json={"name": "x"}, headers=manager.headers)
    for role in ("member", "viewer"):
        user = make_user(domain_name=manager.domain_name, role=role)
        assert api_client.get(f"{API}/audit", headers=user.headers).status_code == 403
    # another domain's manager sees their own (empty) trail, and cannot name ours
    stranger = make_user()
    assert _audit(api_client, stranger) == []
    foreign = {**stranger.auth, "Dashin-Domain": str(manager.domain_id)}
    assert api_client.get(f"{API}/audit", headers=foreign).status_code == 404


def test_a_refused_change_leaves_no_row(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    # Given a source with a running job: deleting it answers 409 and rolls back
    source = create_source(api_client, manager)
    create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire"))
    url = f"{API}/data-sources/{source['id']}"
    assert api_client.delete(url, headers=manager.headers).status_code == 409
    # And a 422 on create writes nothing either
    bad = api_client.post(f"{API}/campaigns", json={"name": ""}, headers=manager.headers)
    assert bad.status_code == 422
    assert [r["action"] for r in _audit(api_client, manager)] == ["create"]


def test_bulk_lead_requests_are_one_row_with_the_count(
    api_client: TestClient, manager: ApiUser
) -> None:
    ids = []
    for i in range(3):
        response = api_client.post(
            f"{API}/leads", json={"email": f"bulk{i}@x.example"}, headers=manager.headers
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    response = api_client.post(
        f"{API}/leads/bulk",
        json={"action": "update", "ids": ids, "update": {"status": "contacted"}},
        headers=manager.headers,
    )
    assert response.status_code == 200, response.text
    [bulk] = _audit(api_client, manager, entity="lead", action="bulk_update")
    assert (bulk["count"], bulk["fields"], bulk["entity_id"]) == (3, ["status"], None)
    creates = _audit(api_client, manager, entity="lead", action="create")
    assert {r["entity_id"] for r in creates} == set(ids)
    assert all(r["fields"] == ["email"] for r in creates)


def test_job_moves_schedules_members_and_keys_are_audited(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser, engine: Engine
) -> None:
    source = create_source(api_client, manager)
    job_id = create_job(engine, manager.domain_id, source["id"])
    start = api_client.post(f"{API}/jobs/{job_id}/start", headers=manager.headers)
    assert start.status_code == 202, start.text
    cancel = api_client.post(f"{API}/jobs/{job_id}/cancel", headers=manager.headers)
    assert cancel.status_code == 202, cancel.text
    moves = _audit(api_client, manager, entity="job", entity_id=str(job_id))
    assert [r["action"] for r in moves] == ["cancel", "start"]

    schedule = api_client.post(
        f"{API}/schedules",
        json={"data_source_id": source["id"], "interval_seconds": 3600},
        headers=manager.headers,
    )
    assert schedule.status_code == 201, schedule.text
    url = f"{API}/schedules/{schedule.json()['id']}"
    assert api_client.delete(url, headers=manager.headers).status_code == 204
    assert api_client.post(f"{url}/restore", headers=manager.headers).status_code == 200
    rows = _audit(api_client, manager, entity="schedule")
    assert [r["action"] for r in rows] == ["restore", "delete", "create"]

    member = make_user(domain_name=manager.domain_name, role="member")
    role = api_client.patch(
        f"{API}/domains/{manager.domain_id}/members/{member.user_id}",
        json={"role": "viewer"},
        headers=manager.headers,
    )
    assert role.status_code == 200, role.text
    [changed] = _audit(api_client, manager, entity="member")
    assert (changed["action"], changed["entity_id"], changed["fields"]) == (
        "update",
        str(member.user_id),
        ["role"],
    )

    # an API key: created and revoked by its owner, and acting as itself
    key = api_client.post(f"{API}/api-keys", json={"name": "ci"}, headers=manager.headers)
    assert key.status_code == 201, key.text
    keyed = {"Authorization": f"Bearer {key.json()['key']}"}
    made = api_client.post(f"{API}/campaigns", json={"name": "by key"}, headers=keyed)
    assert made.status_code == 201, made.text
    [by_key] = _audit(api_client, manager, entity="campaign")
    assert by_key["actor_api_key_id"] == key.json()["id"]
    revoked = api_client.delete(f"{API}/api-keys/{key.json()['id']}", headers=manager.headers)
    assert revoked.status_code == 204
    keys = _audit(api_client, manager, entity="api_key")
    assert [r["action"] for r in keys] == ["delete", "create"]
    assert all(r["entity_id"] == key.json()["id"] and r["domain_id"] for r in keys)
    # the key itself is never in the trail
    assert key.json()["key"] not in str(keys)


def test_platform_admin_actions_are_audited_as_admin(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser
) -> None:
    admin = make_user(domain_name=manager.domain_name, role="admin")
    made = api_client.post(f"{API}/campaigns", json={"name": "support"}, headers=admin.headers)
    assert made.status_code == 201, made.text
    [row] = _audit(api_client, manager, actor=str(admin.user_id))
    assert (row["actor_role"], row["actor_is_admin"], row["domain_id"]) == (
        "admin",
        True,
        str(manager.domain_id),
    )


def test_a_new_domain_is_audited_in_that_domain(api_client: TestClient, manager: ApiUser) -> None:
    name = f"new-{uuid.uuid4().hex[:8]}.example.com"
    created = api_client.post(f"{API}/domains", json={"domain_name": name}, headers=manager.auth)
    assert created.status_code == 201, created.text
    domain_id = created.json()["id"]
    headers = {**manager.auth, "Dashin-Domain": domain_id}
    rows = api_client.get(f"{API}/audit", headers=headers).json()["items"]
    assert [(r["entity_type"], r["action"], r["entity_id"]) for r in rows] == [
        ("domain", "create", domain_id)
    ]


def test_an_invitation_is_audited_without_its_email_or_token(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    email = f"invitee-{uuid.uuid4().hex[:6]}@{manager.domain_name}"
    invited = api_client.post(
        f"{API}/domains/{manager.domain_id}/invitations",
        json={"email": email, "role": "member"},
        headers=manager.headers,
    )
    assert invited.status_code == 201, invited.text
    [row] = _audit(api_client, manager, entity="invitation")
    assert (row["action"], row["entity_id"]) == ("create", invited.json()["invitation"]["id"])
    assert row["fields"] == ["email", "role"]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT string_agg(audit_log::text, '') FROM audit_log"))
        everything = stored.scalar_one()
    assert email not in everything and invited.json()["token"] not in everything
