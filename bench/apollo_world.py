"""Shared set-up for the Apollo benchmarks (`rate_limit.py`, `api_pipeline.py`).

Not a benchmark itself: an Apollo emulator in this process that timestamps every request it
accepts, Apollo data sources pointing at it, and queued jobs on the real worker processes.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import Any

import common

from connectors.sandbox.apollo import ApolloEmulator
from connectors.sandbox.server import Request, Response

API_KEY = "apollo-test-key"
#: `dramatiq_queue_prefetch=1`: Dramatiq's default prefetch is 2 messages per thread, so a
#: one-thread worker busy with a long job holds a second job's message while other processes
#: idle (measured: 2 of 4 jobs ran). `workers/worker.py` should set it; until then, the env.
WORKER_ENV = {
    "DASHIN_SSRF_ALLOW": "127.0.0.0/8",
    "DASHIN_RATE_LIMIT_PARK_S": "600",
    "dramatiq_queue_prefetch": "1",
}


class TimedApollo(ApolloEmulator):  # type: ignore[misc]  # the sandbox is untyped here
    """The Apollo emulator, also keeping the arrival time of every request (monotonic s)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.arrivals: list[tuple[float, int]] = []
        self._arrivals_lock = threading.Lock()

    def handle(self, req: Request) -> Response:
        arrived = time.monotonic()
        response = super().handle(req)
        with self._arrivals_lock:
            self.arrivals.append((arrived, response.status))
        return response


def apollo_source(
    engine: Any, domain_id: uuid.UUID, emulator: ApolloEmulator, **config: Any
) -> uuid.UUID:
    from runtime.crypto import encrypt_json
    from tests.factories import make_source

    settings = {
        "base_url": emulator.url + "/api/v1",
        "search_limit": 1_000_000,
        "search_hourly_limit": None,
        "limit_window_s": 1.0,
        **config,
    }
    source_id: uuid.UUID = make_source(
        engine, domain_id, "apollo", settings, encrypt_json(common.SECRET_KEY, {"api_key": API_KEY})
    )
    return source_id


def queue_job(
    engine: Any, domain_id: uuid.UUID, source_id: uuid.UUID, user_id: uuid.UUID, **params: Any
) -> uuid.UUID:
    from sqlalchemy.orm import Session

    from models import job_states
    from tests.factories import make_job
    from workers.enqueue import enqueue_job

    job_id = make_job(engine, domain_id, source_id, params, user_id)
    with Session(engine) as session, session.begin():
        job_states.start(session, job_id)
    enqueue_job(job_id, "apollo")
    queued: uuid.UUID = job_id
    return queued


def counters(engine: Any, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, int, int]]:
    """job id → (status, pages, fetched)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from models import Job

    with Session(engine) as session:
        rows = session.execute(
            select(Job.id, Job.status, Job.pages, Job.fetched).where(Job.id.in_(job_ids))
        ).all()
    return {r.id: (str(r.status), int(r.pages), int(r.fetched)) for r in rows}


def cancel_all(engine: Any, job_ids: list[uuid.UUID]) -> None:
    from sqlalchemy.orm import Session

    from models import job_states

    for job_id in job_ids:
        # a job that already finished refuses the move: fine
        with contextlib.suppress(Exception), Session(engine) as session, session.begin():
            job_states.cancel(session, job_id)
