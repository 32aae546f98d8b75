"""The memory guard with a real worker process (issue 14, item 1): a provider page far larger
than a worker should read fails the job with the reason, and the worker lives on.

One `python -m workers` process (2 threads) with `DASHIN_MAX_RESPONSE_BYTES` at 1 MiB runs
`generic_api` jobs against the generic emulator. The emulator's second page carries 48 MiB of
padding. Read whole, that page alone would raise the worker's peak memory by well over 100 MiB
(the bytes, the decoded text, the parsed JSON); the guard stops reading at the cap. The
worker's peak resident set (`VmHWM`) is compared before and after.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.sandbox.generic import GenericEmulator
from models import Job, JobLog, job_states
from models.notifications import Notification
from tests.factories import make_domain, make_job, make_source, make_user
from tests.workers.test_faults import Cluster, wait_until
from workers.enqueue import enqueue_job

pytestmark = pytest.mark.slow
CAP = 1 << 20
PADDING = 48 << 20


@pytest.fixture
def emulator() -> Iterator[GenericEmulator]:
    emu = GenericEmulator(records=150, auth="none", max_page_size=100)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def cluster(
    engine: Engine, db_url: str, redis_url: str, settings_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    monkeypatch.setenv("DASHIN_MAX_RESPONSE_BYTES", str(CAP))
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.1/32")
    c = Cluster(engine, db_url, redis_url, heartbeat_s=5.0)
    yield c
    c.close()


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def _run_job(engine: Engine, source: uuid.UUID, domain: uuid.UUID, user: uuid.UUID) -> uuid.UUID:
    job_id = make_job(engine, domain, source, {}, user)
    with Session(engine) as session, session.begin():
        moved = job_states.start(session, job_id)
    enqueue_job(job_id, moved.queue)
    return job_id


def _finished(engine: Engine, job_id: uuid.UUID) -> Job | None:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job if job.status in ("completed", "failed") else None


def test_a_huge_provider_page_fails_the_job_and_the_worker_runs_the_next(
    cluster: Cluster, engine: Engine, emulator: GenericEmulator
) -> None:
    domain = make_domain(engine)
    user = make_user(engine, domain)
    config = {
        "url": f"{emulator.url}{emulator.path}",
        "records_path": "data.items",
        "pagination": {"type": "page", "page_size": 50},
        "field_map": {"email": "email", "first_name": "first_name"},
    }
    source = make_source(engine, domain, "generic_api", config)
    worker = cluster.start_worker(queues="generic_api")
    # Given a worker that has run one ordinary job (its imports and pools are warm)
    warm = _run_job(engine, source, domain, user)
    wait_until(lambda: _finished(engine, warm) is not None, 60, "the first job")
    assert (done := _finished(engine, warm)) is not None and done.status == "completed"
    peak_before = _peak_rss_kib(worker.pid)

    # When the provider answers the second page with 48 MiB
    emulator.faults.huge_page(2, PADDING)
    huge = _run_job(engine, source, domain, user)
    wait_until(lambda: _finished(engine, huge) is not None, 60, "the job with the huge page")

    # Then the job failed with the reason, after committing the page before it
    job = _finished(engine, huge)
    assert job is not None and job.status == "failed", job and (job.status, job.error)
    assert job.error_code == "response_too_large"
    assert job.error is not None and "larger than the 1 MiB one page may take" in job.error
    assert "DASHIN_MAX_RESPONSE_BYTES" in job.error
    assert (job.pages, job.fetched) == (1, 50)
    assert emulator.faults.injected["huge"] == 1  # asked once: a permanent error is not retried
    with Session(engine) as session:
        lines = session.execute(
            select(JobLog.event, JobLog.message).where(
                JobLog.job_id == huge, JobLog.level == "error"
            )
        ).all()
        notified = session.scalars(
            select(Notification.kind).where(Notification.payload["job_id"].astext == str(huge))
        ).all()
    assert [event for event, _ in lines] == ["job.provider_error", "job.finish"]
    assert lines[0].message.startswith("response_too_large (permanent): GET http://127.0.0.1:")
    assert "job.failed" in notified
    # And the same worker process is alive and runs the next job to its end
    assert worker.poll() is None
    after = _run_job(engine, source, domain, user)
    wait_until(lambda: _finished(engine, after) is not None, 60, "the job after")
    assert (done := _finished(engine, after)) is not None and done.status == "completed"
    assert done.fetched == 150
    assert worker.poll() is None
    # And its memory never held the page: the peak grew by less than the padding's size
    grown_mib = (_peak_rss_kib(worker.pid) - peak_before) / 1024
    print(f"worker peak RSS grew by {grown_mib:.1f} MiB across the huge page")
    assert grown_mib < PADDING / (1 << 20) / 2, grown_mib
