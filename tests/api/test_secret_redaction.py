"""Write-only secrets stay write-only through a whole job run (issue 14, H2).

A `generic_api` source sends its API key and a secret parameter in the query string, and the API
repeats the whole query string in its `Link: rel="next"` header. Before the fix that URL, secrets
and all, became the job's checkpoint, its `page.committed` log lines and `GET /jobs`, which any
viewer reads. Canary secrets are searched for in every response a viewer gets and in every row
the run wrote, in both streams a viewer can hold open (`/events` during the run, the job's log
stream after it) and in the worker's own JSON log lines (at debug level, which also carries the
debug lines too many to store).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from connectors.sandbox.generic import GenericEmulator
from runtime.settings import get_settings
from tests.api.conftest import ApiUser, MakeUser
from tests.api.sse_client import read_events, take_until
from tests.log_capture import json_log
from workers.runner import Runner

CANARY_KEY = "canary-key-7f3a9c1e"
CANARY_SIG = "canary-sig-5b2d8e4f"


@pytest.fixture
def emulator() -> Iterator[GenericEmulator]:
    emu = GenericEmulator(
        records=60, pagination="link", auth="api_key_query", api_key_param="key", token=CANARY_KEY
    )
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def worker_log() -> Iterator[io.StringIO]:
    """The process's JSON log lines at debug level (which shows the most)."""
    with json_log("debug") as buffer:
        yield buffer


def _tables(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        )
        return sorted(r[0] for r in rows)


def test_query_secrets_never_reach_checkpoints_logs_or_responses(
    api_client: TestClient,
    make_user: MakeUser,
    engine: Engine,
    redis_url: str,
    emulator: GenericEmulator,
    worker_log: io.StringIO,
) -> None:
    # Given a generic_api source whose key and `sig` travel in the query string
    manager: ApiUser = make_user()
    viewer = make_user(domain_name=manager.domain_name, role="viewer")
    config = {
        "url": f"{emulator.url}{emulator.path}",
        "records_path": "data.items",
        "total_path": "meta.total",
        "auth": "api_key",
        "api_key": CANARY_KEY,
        "api_key_name": "key",
        "api_key_in": "query",
        "secret_params": {"sig": CANARY_SIG},
        "pagination": {"type": "link", "size_param": "size", "page_size": 20},
        "field_map": {"email": "email", "first_name": "first_name"},
    }
    created = api_client.post(
        "/api/v1/data-sources",
        json={"type": "generic_api", "name": "Query-key API", "config": config},
        headers=manager.headers,
    )
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    job = api_client.post(
        "/api/v1/jobs", json={"data_source_id": source_id, "start": True}, headers=manager.headers
    )
    assert job.status_code in (201, 202), job.text
    job_id = job.json()["id"]

    # When a worker runs the job over three Link-paged pages, while a viewer watches /events
    client = redis.Redis.from_url(redis_url)
    with api_client.stream("GET", "/api/v1/events", headers=viewer.headers) as stream:
        events = read_events(stream)
        take_until(events, lambda e: e.event == "ready")
        try:
            outcome = Runner(engine, get_settings(), client, threading.Event()).run(job_id)
        finally:
            client.close()
        assert outcome == "completed"
        live = take_until(
            events,
            lambda e: e.event == "job_status" and e.json() == {**e.json(), "status": "completed"},
        )
    # Then neither stream a viewer holds carries either secret
    assert {"job_status", "lead.batch"} <= {e.event for e in live}
    log_stream = api_client.get(f"/api/v1/jobs/{job_id}/logs/stream", headers=viewer.headers)
    assert log_stream.status_code == 200 and "event: end" in log_stream.text
    for streamed in ("\n".join(e.data for e in live), log_stream.text):
        assert CANARY_KEY not in streamed and CANARY_SIG not in streamed, streamed[:500]
    # And the worker's own log lines name the run but not the secrets
    lines: list[dict[str, object]] = [json.loads(x) for x in worker_log.getvalue().splitlines()]
    assert any(line.get("job_id") == job_id for line in lines), lines[:5]
    assert CANARY_KEY not in worker_log.getvalue() and CANARY_SIG not in worker_log.getvalue()

    # Then every page was fetched with the secrets (the emulator refuses a request without them)
    shown = api_client.get(f"/api/v1/jobs/{job_id}", headers=viewer.headers)
    assert shown.status_code == 200
    assert shown.json()["counters"]["inserted"] == 60
    # And no response a viewer can read carries either secret
    for path in (
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/jobs/{job_id}/logs?limit=1000",
        f"/api/v1/jobs/{job_id}/errors",
        "/api/v1/jobs?limit=100",
        f"/api/v1/data-sources/{source_id}",
        "/api/v1/data-sources",
        "/api/v1/notifications",
    ):
        response = api_client.get(path, headers=viewer.headers)
        assert response.status_code == 200, (path, response.text)
        assert CANARY_KEY not in response.text and CANARY_SIG not in response.text, path
    # And no row of any table holds them in the clear (credentials are stored encrypted)
    with engine.connect() as conn:
        for table in _tables(engine):
            rows = conn.execute(text(f'SELECT to_jsonb(t)::text FROM "{table}" t'))
            row: str
            for row in rows.scalars().all():
                assert CANARY_KEY not in row and CANARY_SIG not in row, (table, row[:300])
    logs = api_client.get(f"/api/v1/jobs/{job_id}/logs?limit=1000", headers=viewer.headers)
    committed = [i for i in logs.json()["items"] if i["event"] == "page.committed"]
    assert committed and "page=" in json.dumps(committed)  # the position is still shown
