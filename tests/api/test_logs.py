"""Job logs: pages by seq, and the SSE stream (order, resume, keep-alive, close, one LISTEN)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from api import sse
from models.job_logs import LogLine
from models.job_states import append_log as append
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    add_logs,
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
    field_names,
    listener_backends,
    move_job,
)
from tests.api.sse_client import Event, read_events, take_until

pytestmark = pytest.mark.usefixtures("connectors_registry")


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user()


@pytest.fixture
def running_job(api_client: TestClient, manager: ApiUser, engine: Engine) -> uuid.UUID:
    """A running job whose log holds seq 1 (start) and 2 (acquire)."""
    source = create_source(api_client, manager)
    return create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire"))


def _seqs(events: list[Event]) -> list[int]:
    return [int(e.id) for e in events if e.event == "log" and e.id is not None]


# ---- pages ---------------------------------------------------------------------------------


def test_logs_page_by_seq_level_and_limit(
    api_client: TestClient,
    make_user: MakeUser,
    manager: ApiUser,
    running_job: uuid.UUID,
    engine: Engine,
) -> None:
    viewer = make_user(manager.domain_name, role="viewer")
    add_logs(engine, running_job, 3)  # seq 3..5
    with Session(engine) as session, session.begin():
        append(session, running_job, [LogLine("warning", "test.warn", "careful")])  # seq 6
    url = f"/api/v1/jobs/{running_job}/logs"

    page = api_client.get(url, params={"limit": 4}, headers=viewer.headers)
    assert page.status_code == 200
    assert [line["seq"] for line in page.json()["items"]] == [1, 2, 3, 4]
    assert page.json()["next_after_seq"] == 4
    line = page.json()["items"][2]
    assert line["job_id"] == str(running_job) and line["event"] == "test.line"
    assert line["level"] == "info" and line["message"] == "line 0" and line["fields"] == {}
    rest = api_client.get(url, params={"after_seq": 4}, headers=viewer.headers).json()
    assert [line["seq"] for line in rest["items"]] == [5, 6] and rest["next_after_seq"] == 6
    empty = api_client.get(url, params={"after_seq": 6}, headers=viewer.headers).json()
    assert empty == {"items": [], "next_after_seq": 6}
    warnings = api_client.get(url, params={"level": "warning"}, headers=viewer.headers).json()
    assert [line["event"] for line in warnings["items"]] == ["test.warn"]
    assert field_names(api_client.get(url, params={"level": "loud"}, headers=viewer.headers)) == {
        "level"
    }
    assert (
        api_client.get(f"/api/v1/jobs/{uuid.uuid4()}/logs", headers=viewer.headers).status_code
        == 404
    )


# ---- the stream ----------------------------------------------------------------------------


def test_stream_follows_concurrent_writers_in_order_and_closes_after_the_end(
    api_client: TestClient, manager: ApiUser, running_job: uuid.UUID, engine: Engine
) -> None:
    add_logs(engine, running_job, 3)  # seq 3..5 exist before the stream opens
    url = f"/api/v1/jobs/{running_job}/logs/stream"
    writer_go = threading.Event()

    def writer() -> None:
        # Given a writer committing batches in its own transactions while the stream is open
        writer_go.wait(10)
        for batch in range(10):
            add_logs(engine, running_job, 7, start=batch * 7)
        move_job(engine, running_job, "complete")  # its own log line, then terminal

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with api_client.stream("GET", url, headers=manager.headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response)
            first = take_until(events, lambda e: e.id == "5")
            writer_go.set()
            # When the stream is read to its end
            rest = [e for e in events if e.comment is None]
    finally:
        writer_go.set()
        thread.join()
    # Then every line arrived once, in seq order, and the stream closed after the final status
    seqs = _seqs(first + rest)
    assert seqs == list(range(1, 5 + 70 + 2))
    assert rest[-1].event == "end" and rest[-1].json()["status"] == "completed"
    final = [e for e in rest if e.event == "log"][-1].json()
    assert final["event"] == "job.finish"


def test_stream_resumes_from_last_event_id_without_gaps_or_repeats(
    api_client: TestClient, manager: ApiUser, running_job: uuid.UUID, engine: Engine
) -> None:
    add_logs(engine, running_job, 8)  # seq 3..10
    url = f"/api/v1/jobs/{running_job}/logs/stream"
    with api_client.stream("GET", url, headers=manager.headers) as response:
        before = take_until(read_events(response), lambda e: e.id == "6")
    # The client dropped after seq 6; more lines and the end happen while it is away.
    add_logs(engine, running_job, 5)  # seq 11..15
    move_job(engine, running_job, "complete")  # seq 16
    headers = {**manager.headers, "Last-Event-ID": before[-1].id or ""}
    with api_client.stream("GET", url, params={"after_seq": 0}, headers=headers) as response:
        after = [e for e in read_events(response) if e.comment is None]
    assert _seqs(before) == [1, 2, 3, 4, 5, 6]
    assert _seqs(after) == list(range(7, 17))
    assert after[-1].event == "end"

    # after_seq works the same way when no Last-Event-ID is sent.
    with api_client.stream("GET", url, params={"after_seq": 14}, headers=manager.headers) as r:
        assert _seqs(list(read_events(r))) == [15, 16]


def test_stream_of_a_finished_job_sends_everything_then_closes(
    api_client: TestClient, manager: ApiUser, engine: Engine, make_user: MakeUser
) -> None:
    source = create_source(api_client, manager)
    job_id = create_job(engine, manager.domain_id, source["id"], moves=("start", "cancel"))
    url = f"/api/v1/jobs/{job_id}/logs/stream"
    with api_client.stream("GET", url, headers=manager.headers) as response:
        events = [e for e in read_events(response) if e.comment is None]
    assert [e.event for e in events] == ["log", "log", "end"]
    assert events[-1].json() == {"job_id": str(job_id), "status": "cancelled"}
    outsider = make_user()
    assert api_client.get(url, headers=outsider.headers).status_code == 404
    assert (
        api_client.get(
            f"/api/v1/jobs/{uuid.uuid4()}/logs/stream", headers=manager.headers
        ).status_code
        == 404
    )


def test_stream_sends_keep_alive_comments_while_idle(
    api_client: TestClient,
    manager: ApiUser,
    running_job: uuid.UUID,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.2)
    url = f"/api/v1/jobs/{running_job}/logs/stream"
    with api_client.stream("GET", url, headers=manager.headers) as response:
        events = read_events(response)
        take_until(events, lambda e: e.id == "2")
        comment = next(e for e in events if e.comment is not None or e.event == "log")
        assert comment.comment is not None and comment.comment.startswith("ping")
        move_job(engine, running_job, "complete")
        tail = [e for e in events if e.comment is None]
    assert [e.event for e in tail] == ["log", "end"]


@pytest.mark.timeout(60)
def test_streams_share_one_listen_connection_that_reconnects(
    api_client: TestClient,
    manager: ApiUser,
    running_job: uuid.UUID,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Polling must not be what rescues the stream below: only the reconnect may.
    monkeypatch.setattr(sse, "POLL_S", 3600.0)
    url = f"/api/v1/jobs/{running_job}/logs/stream"
    with (
        api_client.stream("GET", url, headers=manager.headers) as one,
        api_client.stream("GET", url, headers=manager.headers) as two,
        api_client.stream("GET", url, headers=manager.headers) as three,
    ):
        streams = [read_events(r) for r in (one, two, three)]
        for events in streams:
            take_until(events, lambda e: e.id == "2")
        backends = listener_backends(engine)
        assert len(backends) == 1  # three streams, one LISTEN connection

        # When the listener's connection is killed and lines are written meanwhile
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backends[0]})
        add_logs(engine, running_job, 2)  # seq 3..4
        # Then every stream still gets them (the listener reconnects and streams re-read)
        for events in streams:
            assert _seqs(take_until(events, lambda e: e.id == "4"))[-2:] == [3, 4]
        new_backends = listener_backends(engine)
        assert len(new_backends) == 1 and new_backends != backends
        add_logs(engine, running_job, 1)  # seq 5: notifications flow again
        for events in streams:
            assert _seqs(take_until(events, lambda e: e.id == "5")) == [5]
        move_job(engine, running_job, "complete")
        for events in streams:
            assert (
                take_until(events, lambda e: e.event == "end")[-1].json()["status"] == "completed"
            )


def test_stream_level_filter_keeps_seq_ids(
    api_client: TestClient, manager: ApiUser, running_job: uuid.UUID, engine: Engine
) -> None:
    with Session(engine) as session, session.begin():
        append(
            session,
            running_job,
            [LogLine("info", "a"), LogLine("error", "b"), LogLine("info", "c")],
        )  # seq 3..5
    move_job(engine, running_job, "complete")  # seq 6 (info)
    url = f"/api/v1/jobs/{running_job}/logs/stream"
    params: dict[str, Any] = {"level": "error"}
    with api_client.stream("GET", url, params=params, headers=manager.headers) as response:
        events = [e for e in read_events(response) if e.comment is None]
    assert [(e.event, e.id) for e in events] == [("log", "4"), ("end", None)]
