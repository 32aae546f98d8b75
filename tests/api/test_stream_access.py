"""Open streams lose access with their caller (issue 14, M3).

The probe kept reading `/events` and a job's log stream after revoking the API key that opened
them and after removing the user from the domain. A stream now re-checks its caller before every
event and at least every `sse.RECHECK_S` while idle, and ends with a `revoked` event. No sleeps:
the first test sets the idle re-check far away, so only the next event can be what ends it; the
second waits for the `revoked` event itself (bounded by the test's timeout).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from api import live, sse
from models.tenancy import User
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    add_logs,
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
    move_job,
)
from tests.api.sse_client import read_events, take_until

pytestmark = [pytest.mark.usefixtures("connectors_registry"), pytest.mark.timeout(60)]


def _api_key(client: TestClient, user: ApiUser) -> tuple[str, dict[str, str]]:
    created = client.post("/api/v1/api-keys", json={"name": "stream"}, headers=user.headers)
    assert created.status_code == 201
    return created.json()["id"], {"Authorization": f"Bearer {created.json()['key']}"}


def test_events_stream_ends_at_the_next_event_once_its_key_is_revoked(
    api_client: TestClient, make_user: MakeUser, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "RECHECK_S", 3600.0)  # only the event below may end the stream
    manager = make_user()
    source = create_source(api_client, manager)
    key_id, key_auth = _api_key(api_client, manager)
    with api_client.stream("GET", "/api/v1/events", headers=key_auth) as response:
        assert response.status_code == 200
        events = read_events(response)
        take_until(events, lambda e: e.event == "ready")
        # Given a job move the key's stream sees
        job = create_job(engine, manager.domain_id, source["id"], moves=("start",))
        seen = take_until(events, lambda e: e.event == "job_status")
        assert seen[-1].json()["job_id"] == str(job)
        # When the key is revoked and another move happens in the domain
        revoked = api_client.delete(f"/api/v1/api-keys/{key_id}", headers=manager.headers)
        assert revoked.status_code == 204
        move_job(engine, job, "cancel")
        # Then the stream sends `revoked` instead of the move, and ends
        rest = [e for e in events if e.comment is None]
    assert [e.event for e in rest] == ["revoked"]
    assert rest[0].json() == {"reason": "access revoked"}


def test_log_stream_of_a_removed_member_ends_while_idle(
    api_client: TestClient, make_user: MakeUser, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "RECHECK_S", 0.2)
    monkeypatch.setattr(sse, "POLL_S", 3600.0)
    manager = make_user()
    viewer = make_user(manager.domain_name, role="viewer")
    source = create_source(api_client, manager)
    job = create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire"))
    url = f"/api/v1/jobs/{job}/logs/stream"
    with api_client.stream("GET", url, headers=viewer.headers) as response:
        assert response.status_code == 200
        events = read_events(response)
        take_until(events, lambda e: e.id == "2")
        # When the viewer is removed from the domain while the job is quiet
        removed = api_client.delete(
            f"/api/v1/domains/{manager.domain_id}/members/{viewer.user_id}",
            headers=manager.headers,
        )
        assert removed.status_code == 204
        # Then the idle re-check ends the stream with `revoked`, and no line follows it
        tail = take_until(events, lambda e: e.event in ("revoked", "log"))
        assert tail[-1].event == "revoked"
        add_logs(engine, job, 1)
        assert [e for e in events if e.comment is None] == []


def test_log_stream_keeps_going_for_a_caller_who_keeps_access(
    api_client: TestClient, make_user: MakeUser, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "RECHECK_S", 0.05)  # many re-checks: none may end the stream
    manager = make_user()
    source = create_source(api_client, manager)
    job = create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire"))
    url = f"/api/v1/jobs/{job}/logs/stream"
    with api_client.stream("GET", url, headers=manager.headers) as response:
        events = read_events(response)
        take_until(events, lambda e: e.id == "2")
        add_logs(engine, job, 2)
        assert [e.id for e in take_until(events, lambda e: e.id == "4")] == ["3", "4"]
        move_job(engine, job, "complete")
        assert take_until(events, lambda e: e.event in ("end", "revoked"))[-1].event == "end"


def test_a_demoted_manager_keeps_the_stream_every_role_may_read(
    api_client: TestClient, make_user: MakeUser, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every role reads both streams (docs/api.md "Live streams"): a role change re-checked
    # mid-stream keeps it open, while plain requests follow the new role at once
    monkeypatch.setattr(live, "RECHECK_S", 0.05)  # many re-checks under the new role
    manager = make_user()
    demoted = make_user(manager.domain_name, role="manager")
    source = create_source(api_client, manager)
    with api_client.stream("GET", "/api/v1/events", headers=demoted.headers) as response:
        events = read_events(response)
        take_until(events, lambda e: e.event == "ready")
        changed = api_client.patch(
            f"/api/v1/domains/{manager.domain_id}/members/{demoted.user_id}",
            json={"role": "viewer"},
            headers=manager.headers,
        )
        assert changed.status_code == 200 and changed.json()["role"] == "viewer", changed.text
        write = api_client.post("/api/v1/campaigns", json={"name": "x"}, headers=demoted.headers)
        assert write.status_code == 403
        job = create_job(engine, manager.domain_id, source["id"], moves=("start",))
        seen = take_until(events, lambda e: e.event in ("job_status", "revoked"))
        assert seen[-1].event == "job_status" and seen[-1].json()["job_id"] == str(job)


def test_a_stream_opened_as_platform_admin_ends_when_the_admin_role_is_withdrawn(
    api_client: TestClient, make_user: MakeUser, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an admin reads any domain without being its member: the repeated check must re-read
    # the role itself, not only the membership or the credentials
    monkeypatch.setattr(sse, "RECHECK_S", 0.2)
    manager = make_user()
    admin = make_user(role="admin")
    source = create_source(api_client, manager)
    job = create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire"))
    headers = {**admin.headers, "Dashin-Domain": str(manager.domain_id)}
    url = f"/api/v1/jobs/{job}/logs/stream"
    with api_client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        events = read_events(response)
        take_until(events, lambda e: e.id == "2")
        with Session(engine) as session, session.begin():
            session.execute(update(User).where(User.id == admin.user_id).values(is_admin=False))
        add_logs(engine, job, 1)  # checked before it is sent: `revoked` comes instead
        tail = take_until(events, lambda e: e.event in ("revoked", "log", "end"))
        assert tail[-1].event == "revoked"
        assert [e for e in events if e.comment is None] == []
