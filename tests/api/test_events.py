"""`GET /events`: live job status changes of the caller's domain and the caller's notifications.

No sleeps: each stream is read up to its `ready` event (LISTEN active) before anything changes,
and a later change in the same domain serves as a barrier — notifications arrive in commit order
on the one LISTEN connection, so anything the stream should have filtered out came before it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import MakeUser
from tests.api.helpers import (
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
    move_job,
)
from tests.api.sse_client import Event, read_events, take_until

pytestmark = pytest.mark.usefixtures("connectors_registry")

URL = "/api/v1/events"


def _is_status(job_id: uuid.UUID, status: str) -> Callable[[Event], bool]:
    def match(event: Event) -> bool:
        if event.event != "job_status":
            return False
        data = event.json()
        return bool(data["job_id"] == str(job_id) and data["status"] == status)

    return match


def test_events_carry_own_domain_job_moves_and_own_notifications(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    viewer = make_user(manager.domain_name, role="viewer")
    outsider = make_user()
    source = create_source(api_client, manager)
    foreign_source = create_source(api_client, outsider)
    job = create_job(engine, manager.domain_id, source["id"])
    foreign_job = create_job(engine, outsider.domain_id, foreign_source["id"])

    with (
        api_client.stream("GET", URL, headers=manager.headers) as mine,
        api_client.stream("GET", URL, headers=viewer.headers) as viewers,
    ):
        assert mine.status_code == 200
        streams = {"manager": read_events(mine), "viewer": read_events(viewers)}
        for events in streams.values():
            ready = take_until(events, lambda e: e.event == "ready")
            assert ready[-1].json() == {"listening": True}

        # Given moves in another domain first, then in ours (the last one terminal)
        move_job(engine, foreign_job, "start")
        move_job(engine, job, "start")
        move_job(engine, job, "cancel")

        seen = take_until(streams["manager"], _is_status(job, "cancelled"))
        seen += take_until(streams["manager"], lambda e: e.event == "notification")
        assert [e.json()["status"] for e in seen if e.event == "job_status"] == [
            "queued",
            "cancelled",
        ]
        assert all(e.json()["job_id"] == str(job) for e in seen if e.event == "job_status")
        assert seen[0].json()["data_source_id"] == source["id"]
        note = seen[-1].json()
        assert note["kind"] == "job.cancelled" and note["payload"]["job_id"] == str(job)

        # The viewer gets the moves but not the manager's notification.
        barrier = create_job(engine, manager.domain_id, source["id"], moves=("start",))
        viewer_seen = take_until(streams["viewer"], _is_status(barrier, "queued"))
        assert [e.event for e in viewer_seen] == ["job_status"] * 3
        assert str(foreign_job) not in "".join(e.data for e in viewer_seen)


def test_events_need_membership(api_client: TestClient, make_user: MakeUser) -> None:
    manager = make_user()
    outsider = make_user()
    headers = {**outsider.auth, "Dashin-Domain": str(manager.domain_id)}
    assert api_client.get(URL, headers=headers).status_code == 404
    assert api_client.get(URL).status_code == 401
