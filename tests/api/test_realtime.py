"""Realtime for every entity (issue 18, item 4): lead, campaign, data source and campaign metric
changes on `GET /events` and on the `/ws` WebSocket, resumable after `Last-Event-ID`.

No sleeps: each stream is read up to `ready` (LISTEN active, cursor read) before anything
changes, and a later change of the same domain is the barrier for what must not arrive (events
of one domain come in commit order).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import Session
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from api import live
from api.listener import RESYNC
from models.domain_events import DomainEvent
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    connectors_registry,  # noqa: F401  (fixture)
    create_source,
    listener_backends,
)
from tests.api.sse_client import Event, read_events, take_until

pytestmark = pytest.mark.usefixtures("connectors_registry")

API = "/api/v1"
ENTITY_KINDS = ("lead.", "campaign.", "data_source.")


def _entity(event: Event) -> bool:
    return bool(event.event and event.event.startswith(ENTITY_KINDS))


def _campaign(client: TestClient, user: ApiUser, name: str = "Q3") -> str:
    response = client.post(f"{API}/campaigns", json={"name": name}, headers=user.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _lead(client: TestClient, user: ApiUser, email: str, campaign_id: str | None = None) -> str:
    body: dict[str, Any] = {"email": email, "first_name": "Grace", "campaign_id": campaign_id}
    response = client.post(f"{API}/leads", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _changes(client: TestClient, user: ApiUser, email: str) -> dict[str, str]:
    """One of each change the feed carries; returns the ids involved."""
    campaign = _campaign(client, user)
    patched = client.patch(
        f"{API}/campaigns/{campaign}", json={"objective": "demos"}, headers=user.headers
    )
    assert patched.status_code == 200
    source = create_source(client, user)["id"]
    lead = _lead(client, user, email, campaign)
    moved = client.patch(f"{API}/leads/{lead}", json={"priority": "high"}, headers=user.headers)
    assert moved.status_code == 200
    bulk = client.post(
        f"{API}/leads/bulk", json={"action": "delete", "ids": [lead]}, headers=user.headers
    )
    assert bulk.status_code == 200 and bulk.json()["succeeded"] == 1
    return {"campaign": campaign, "source": source, "lead": lead}


EXPECTED_KINDS = [
    "campaign.created",
    "campaign.updated",
    "data_source.created",
    "lead.created",
    "lead.updated",
    "lead.deleted",
]


def test_events_stream_entity_changes_with_ids_only_and_resume_after_last_event_id(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    viewer = make_user(manager.domain_name, role="viewer")
    email = f"grace.{uuid.uuid4().hex[:8]}@navy.example"
    with api_client.stream("GET", f"{API}/events", headers=viewer.headers) as response:
        assert response.status_code == 200
        events = read_events(response)
        ready = take_until(events, lambda e: e.event == "ready")[-1]
        assert ready.json() == {"listening": True} and ready.id is not None
        ids = _changes(api_client, manager, email)
        seen = take_until(events, lambda e: e.event == "lead.deleted")
        # a wake-up sends the log's events first, then the metric doorbells that came with them
        seen += take_until(events, lambda e: e.event == "campaign_metrics")

    entity = [e for e in seen if _entity(e)]
    assert [e.event for e in entity] == EXPECTED_KINDS
    # ids are the log's seq: consecutive after the one `ready` named
    assert [int(e.id or 0) for e in entity] == [
        int(ready.id) + n for n in range(1, len(EXPECTED_KINDS) + 1)
    ]
    data = [e.json() for e in entity]
    assert data[0]["id"] == data[1]["id"] == ids["campaign"]
    assert data[2]["id"] == ids["source"]
    for created in data[3:]:
        assert created["ids"] == [ids["lead"]] and created["count"] == 1
    # campaign metrics: the lead joined the campaign
    metrics = [e.json() for e in seen if e.event == "campaign_metrics"]
    assert metrics and {m["campaign_id"] for m in metrics} == {ids["campaign"]}
    # ids and kinds only: no personal data on the wire
    assert all(email not in e.data and "Grace" not in e.data for e in seen)

    # Resume after the second event: exactly the rest of the log, in order, then live.
    resume = {**viewer.headers, "Last-Event-ID": entity[1].id or ""}
    with api_client.stream("GET", f"{API}/events", headers=resume) as response:
        events = read_events(response)
        assert take_until(events, lambda e: e.event == "ready")[-1].id == entity[1].id
        replayed = take_until(events, lambda e: e.event == "lead.deleted")
        assert [(e.event, e.id) for e in replayed] == [(e.event, e.id) for e in entity[2:]]
        later = _campaign(api_client, manager, "later")
        live = take_until(events, _entity)
    assert live[-1].event == "campaign.created" and live[-1].json()["id"] == later
    assert live[-1].id == str(int(entity[-1].id or 0) + 1)


def test_a_last_event_id_past_the_log_resyncs_and_goes_live(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    headers = {**manager.headers, "Last-Event-ID": "999999"}
    with api_client.stream("GET", f"{API}/events", headers=headers) as response:
        events = read_events(response)
        ready = take_until(events, lambda e: e.event == "ready")[-1]
        assert ready.id == "0"  # where the log is: what follows comes after it
        assert take_until(events, lambda e: True)[-1].event == "resync"
        campaign = _campaign(api_client, manager)
        created = take_until(events, _entity)[-1]
    assert created.event == "campaign.created" and created.json()["id"] == campaign
    assert created.id == "1"


def test_expired_events_make_a_resumed_stream_resync_first(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    for name in ("one", "two", "three"):
        _campaign(api_client, manager, name)
    with Session(engine) as session, session.begin():  # retention pruned the first two
        session.execute(
            delete(DomainEvent).where(
                DomainEvent.domain_id == manager.domain_id, DomainEvent.seq < 3
            )
        )
    headers = {**manager.headers, "Last-Event-ID": "0"}
    with api_client.stream("GET", f"{API}/events", headers=headers) as response:
        events = read_events(response)
        take_until(events, lambda e: e.event == "ready")
        seen = take_until(events, _entity)
    assert [(e.event, e.id) for e in seen] == [("resync", None), ("campaign.created", "3")]


def test_a_long_replay_comes_in_batches_in_order(
    api_client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "BATCH", 2)
    manager = make_user()
    made = [_campaign(api_client, manager, f"c{n}") for n in range(5)]
    headers = {**manager.headers, "Last-Event-ID": "0"}
    with api_client.stream("GET", f"{API}/events", headers=headers) as response:
        events = read_events(response)
        take_until(events, lambda e: e.event == "ready")
        replayed = [take_until(events, _entity)[-1] for _ in made]
    assert [(e.id, e.json()["id"]) for e in replayed] == [
        (str(n), made[n - 1]) for n in range(1, 6)
    ]


@pytest.mark.timeout(60)
def test_log_events_committed_while_the_listener_reconnects_still_arrive(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    with api_client.stream("GET", f"{API}/events", headers=manager.headers) as response:
        events = read_events(response)
        take_until(events, lambda e: e.event == "ready")
        (backend,) = listener_backends(engine)
        # When the LISTEN connection dies and a change commits meanwhile
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        campaign = _campaign(api_client, manager)
        # Then the stream gets it all the same: by its NOTIFY if LISTEN was back in time,
        # else by the log re-read that the reconnect's resync triggers
        seen = take_until(events, _entity)
    assert seen[-1].event == "campaign.created" and seen[-1].json()["id"] == campaign
    assert seen[-1].id == "1"


def test_a_resync_doorbell_rereads_the_log_after_the_cursor(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    made = [_campaign(api_client, manager, name) for name in ("a", "b")]
    with Session(engine) as session:
        read = live._read(
            session,
            notices=[RESYNC],
            user_id=manager.user_id,
            domain_id=manager.domain_id,
            cursor=1,
            read_log=False,
            allowed=lambda _session: True,
        )
    assert [(e.event, e.id) for e in read.events] == [("campaign.created", "2"), ("resync", None)]
    assert read.events[0].data["id"] == made[1] and read.cursor == 2


# --- WebSocket ---------------------------------------------------------------------------------


def _receive(ws: WebSocketTestSession, type_: str) -> dict[str, Any]:
    """The next message of `type_`; fails on any other type but `event` in between."""
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] == type_:
            return message
        assert message["type"] == "event", message


def _close_code(ws: WebSocketTestSession) -> int:
    """The code the server closes the socket with, as the next thing it does."""
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    return int(closed.value.code)


def _events_until(ws: WebSocketTestSession, kind: str) -> Iterator[dict[str, Any]]:
    while True:
        message: dict[str, Any] = ws.receive_json()
        assert message["type"] == "event", message
        yield message
        if message["event"] == kind:
            return


def test_websocket_subscribes_by_channel_with_a_token_in_the_first_message(
    api_client: TestClient, make_user: MakeUser, capsys: pytest.CaptureFixture[str]
) -> None:
    manager = make_user()
    with api_client.websocket_connect(f"{API}/ws?domain={manager.domain_id}") as ws:
        ws.send_json({"op": "auth", "token": manager.token})
        ready = _receive(ws, "ready")
        assert ready["domain_id"] == str(manager.domain_id) and ready["listening"] is True
        assert "lead" in ready["channels"] and "campaign_metrics" in ready["channels"]

        ws.send_json({"op": "subscribe", "channels": ["lead", "leeds"]})
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == "unknown_channel"
        assert error["channels"] == ["leeds"] and "'leeds'" in error["message"]
        ws.send_json({"op": "subscribe", "channels": ["lead", "campaign"]})
        assert ws.receive_json() == {"type": "subscribed", "channels": ["campaign", "lead"]}

        campaign = _campaign(api_client, manager)
        first = ws.receive_json()
        assert first["event"] == "campaign.created" and first["data"]["id"] == campaign
        assert first["channel"] == "campaign"
        assert int(first["id"]) == int(ready["last_event_id"]) + 1

        ws.send_json({"op": "unsubscribe", "channels": ["campaign"]})
        assert _receive(ws, "unsubscribed") == {"type": "unsubscribed", "channels": ["lead"]}
        _campaign(api_client, manager, "not wanted")  # the campaign channel is off ...
        lead = _lead(api_client, manager, f"{uuid.uuid4().hex[:8]}@x.example")
        seen = list(_events_until(ws, "lead.created"))  # ... so the lead comes next
    assert [m["event"] for m in seen] == ["lead.created"]
    assert seen[0]["data"]["ids"] == [lead] and int(seen[0]["id"]) == int(first["id"]) + 2
    logged = capsys.readouterr()
    assert manager.token not in logged.out + logged.err  # the token is never logged


def test_websocket_answers_bad_messages_and_closes_on_oversized_ones(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    with api_client.websocket_connect(f"{API}/ws", headers=manager.headers) as ws:
        _receive(ws, "ready")
        for bad in ("not json", '{"op": "subscribe", "channels": "lead"}', '{"op": "jump"}'):
            ws.send_text(bad)
            assert ws.receive_json()["code"] == "bad_message", bad
        ws.send_json({"op": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        ws.send_text("x" * 5000)
        assert ws.receive_json()["code"] == "too_large"
        assert _close_code(ws) == 4400


def test_websocket_with_a_header_resumes_after_last_event_id(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    made = [_campaign(api_client, manager, name) for name in ("a", "b", "c")]
    url = f"{API}/ws?last_event_id=1"
    with api_client.websocket_connect(url, headers=manager.headers) as ws:
        assert _receive(ws, "ready")["last_event_id"] == "1"
        ws.send_json({"op": "subscribe", "channels": ["campaign"]})
        assert ws.receive_json()["type"] == "subscribed"
        replayed = list(_events_until(ws, "campaign.created"))
        replayed += list(_events_until(ws, "campaign.created"))
    assert [(m["id"], m["data"]["id"]) for m in replayed] == [("2", made[1]), ("3", made[2])]


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ({"op": "subscribe", "channels": ["lead"]}, "unauthenticated"),
        ({"op": "auth", "token": "dsk_not-a-key"}, "unauthenticated"),
    ],
)
def test_websocket_refuses_without_valid_credentials(
    api_client: TestClient, first: dict[str, Any], code: str
) -> None:
    with api_client.websocket_connect(f"{API}/ws") as ws:
        ws.send_json(first)
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == code
        assert "dsk_not-a-key" not in error["message"]  # the token is never echoed
        assert _close_code(ws) == 4401


def test_websocket_ends_with_revoked_once_its_key_is_revoked(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    created = api_client.post(f"{API}/api-keys", json={"name": "ws"}, headers=manager.headers)
    key_id, key = created.json()["id"], created.json()["key"]
    with api_client.websocket_connect(f"{API}/ws") as ws:
        ws.send_json({"op": "auth", "token": key})
        _receive(ws, "ready")
        ws.send_json({"op": "subscribe", "channels": ["campaign"]})
        _receive(ws, "subscribed")
        revoked = api_client.delete(f"{API}/api-keys/{key_id}", headers=manager.headers)
        assert revoked.status_code == 204
        _campaign(api_client, manager)  # the next event finds the key revoked
        assert _receive(ws, "revoked") == {"type": "revoked", "reason": "access revoked"}
        assert _close_code(ws) == 4403


def _logged_events(engine: Engine, domain_id: uuid.UUID) -> list[DomainEvent]:
    """The domain's event log, oldest first."""
    with Session(engine) as session:
        return list(
            session.scalars(
                select(DomainEvent)
                .where(DomainEvent.domain_id == domain_id)
                .order_by(DomainEvent.seq)
            )
        )


def test_one_event_per_api_request_and_bulk_request(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    leads = [_lead(api_client, manager, f"{uuid.uuid4().hex[:8]}@x.example") for _ in range(3)]
    bulk = api_client.post(
        f"{API}/leads/bulk",
        json={"action": "update", "ids": leads, "update": {"priority": "low"}},
        headers=manager.headers,
    )
    assert bulk.status_code == 200 and bulk.json()["succeeded"] == 3
    rows = _logged_events(engine, manager.domain_id)
    assert len(rows) == 4
    assert [r.kind for r in rows] == ["lead.created"] * 3 + ["lead.updated"]
    assert sorted(rows[-1].data["ids"]) == sorted(leads) and rows[-1].data["count"] == 3
    assert rows[-1].data["action"] == "bulk_update"


def test_a_member_gets_only_the_ids_of_leads_they_see(
    api_client: TestClient, make_user: MakeUser
) -> None:
    """A member sees their own campaigns' leads and those assigned to them (`GET /leads`); the
    feed names no other lead's id. Campaigns are the domain's for every member."""
    manager = make_user()
    member = make_user(manager.domain_name, role="member")
    theirs = _campaign(api_client, member, "member's own")
    with api_client.stream("GET", f"{API}/events", headers=member.headers) as response:
        assert response.status_code == 200
        events = read_events(response)
        take_until(events, lambda e: e.event == "ready")
        hidden = _lead(api_client, manager, f"{uuid.uuid4().hex[:8]}@other.example")
        shown = _lead(api_client, manager, f"{uuid.uuid4().hex[:8]}@mine.example", theirs)
        both = {"action": "delete", "ids": [hidden, shown]}
        deleted = api_client.post(f"{API}/leads/bulk", json=both, headers=manager.headers)
        assert deleted.status_code == 200 and deleted.json()["succeeded"] == 2
        barrier = _campaign(api_client, manager, "barrier")
        seen = take_until(events, lambda e: e.event == "campaign.created")

    leads = [e for e in seen if e.event and e.event.startswith("lead.")]
    assert [e.event for e in leads] == ["lead.created", "lead.deleted"]
    assert all(e.json()["ids"] == [shown] and e.json()["count"] == 1 for e in leads)
    assert seen[-1].json()["id"] == barrier
    assert hidden not in "".join(e.data for e in seen)


def test_deleting_and_restoring_a_data_source_are_events_with_its_id_only(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    source = create_source(api_client, manager, name="Secret vault")["id"]
    deleted = api_client.delete(f"{API}/data-sources/{source}", headers=manager.headers)
    assert deleted.status_code == 204
    restored = api_client.post(f"{API}/data-sources/{source}/restore", headers=manager.headers)
    assert restored.status_code == 200
    rows = _logged_events(engine, manager.domain_id)
    assert [(r.kind, r.data) for r in rows] == [
        ("data_source.created", {"id": source}),
        ("data_source.deleted", {"id": source}),
        ("data_source.restored", {"id": source}),
    ]
