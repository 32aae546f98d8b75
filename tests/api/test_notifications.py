"""Notifications: the caller's own, filtered by unread, marked read one by one or all at once."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models.notifications_repo import notify_users
from tests.api.conftest import ApiUser, MakeUser

BASE = "/api/v1/notifications"


def _notify(engine: Engine, user: ApiUser, kind: str, domain_id: uuid.UUID | None = None) -> str:
    with Session(engine) as session, session.begin():
        (note_id,) = notify_users(
            session, domain_id or user.domain_id, [user.user_id], kind, {"k": kind}
        )
    return str(note_id)


def test_list_read_and_read_all_touch_only_own_notifications(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    viewer = make_user(role="viewer")
    colleague = make_user(viewer.domain_name, role="member")
    first = _notify(engine, viewer, "job.completed")
    second = _notify(engine, viewer, "job.failed")
    theirs = _notify(engine, colleague, "lead.assigned")

    listed = api_client.get(BASE, headers=viewer.headers)
    assert listed.status_code == 200
    assert {n["id"] for n in listed.json()["items"]} == {first, second}
    assert listed.json()["items"][0]["read_at"] is None

    read = api_client.post(f"{BASE}/{first}/read", headers=viewer.headers)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    again = api_client.post(f"{BASE}/{first}/read", headers=viewer.headers)
    assert again.json()["read_at"] == read.json()["read_at"]  # the first reading stands
    unread = api_client.get(BASE, params={"unread": True}, headers=viewer.headers).json()
    assert [n["id"] for n in unread["items"]] == [second]
    assert [n["kind"] for n in unread["items"]] == ["job.failed"]

    # Someone else's notification is not found, and read-all leaves it alone.
    assert api_client.post(f"{BASE}/{theirs}/read", headers=viewer.headers).status_code == 404
    assert api_client.post(f"{BASE}/{uuid.uuid4()}/read", headers=viewer.headers).status_code == 404
    marked = api_client.post(f"{BASE}/read-all", headers=viewer.headers)
    assert marked.status_code == 200 and marked.json() == {"marked": 1}
    assert (
        api_client.get(BASE, params={"unread": True}, headers=viewer.headers).json()["items"] == []
    )
    theirs_now = api_client.get(BASE, params={"unread": True}, headers=colleague.headers).json()
    assert [n["id"] for n in theirs_now["items"]] == [theirs]


def test_notifications_are_scoped_to_the_domain_acted_in(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    user = make_user()
    elsewhere = make_user()
    other_domain_note = _notify(engine, user, "job.completed", domain_id=elsewhere.domain_id)
    assert api_client.get(BASE, headers=user.headers).json()["items"] == []
    assert (
        api_client.post(f"{BASE}/{other_domain_note}/read", headers=user.headers).status_code == 404
    )
    counted = api_client.get(BASE, params={"count": True}, headers=user.headers).json()
    assert counted["total"] == 0
    assert api_client.get(BASE).status_code == 401
