"""Nothing lost, nothing doubled: real worker processes killed, flushed and cut off.

Each test runs `python -m workers` subprocesses against this test's own database and Redis,
with a reaper thread doing what the scheduler process does in production, and then checks the
recorded history (the `page.committed` log lines) as well as the final lead set.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from models import DataSource, Job, JobLog, Lead, LeadSource, job_states
from runtime.broker import make_broker, set_broker
from runtime.db import make_engine
from runtime.embedded import EmbeddedPostgres
from runtime.settings import Settings, get_settings
from scheduler.reaper import reap_once
from tests.factories import make_domain, make_job, make_source, make_user
from tests.tcpproxy import TcpProxy
from workers.enqueue import enqueue_job

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TOTAL = 100_000


class Cluster:
    """Worker processes and a reaper thread around one test database."""

    def __init__(self, engine: Engine, db_url: str, redis_url: str, heartbeat_s: float) -> None:
        self.engine = engine
        self.db_url = db_url
        self.redis_url = redis_url
        self.heartbeat_s = heartbeat_s
        self.workers: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self.broker = make_broker(redis_url)
        set_broker(self.broker)

    def env(self, db_url: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=db_url or self.db_url,
            REDIS_URL=self.redis_url,
            DASHIN_SECRET_KEY="test-secret-key-that-is-long-enough-123",
            DASHIN_HEARTBEAT_TIMEOUT_S=str(self.heartbeat_s),
            DASHIN_LOG_FORMAT="json",
            DASHIN_LOG_LEVEL="warning",
            PYTHONPATH=str(ROOT),
        )
        return env

    def start_worker(
        self, db_url: str | None = None, queues: str = "synthetic"
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers", "--queues", queues, "--threads", "2"],
            env=self.env(db_url),
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.workers.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        os.killpg(proc.pid, sig)
        proc.wait(60)

    def start_reaper(self, interval_s: float = 0.5) -> None:
        settings = replace_settings(self.heartbeat_s)

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    reap_once(self.engine, settings, enqueue=enqueue_job)
                except Exception:  # a reaper sweep may hit the proxy outage; try again
                    continue

        self._reaper = threading.Thread(target=loop, daemon=True)
        self._reaper.start()

    def close(self) -> None:
        self._stop.set()
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        set_broker(None)


def replace_settings(heartbeat_s: float) -> Settings:
    return get_settings().model_copy(
        update={"heartbeat_timeout_s": heartbeat_s, "queued_grace_s": 2.0}
    )


@pytest.fixture
def cluster(engine: Engine, db_url: str, redis_url: str, settings_env: None) -> Iterator[Cluster]:
    c = Cluster(engine, db_url, redis_url, heartbeat_s=3.0)
    yield c
    c.close()


def start_job(engine: Engine, total: int = TOTAL, delay_s: float = 0.01) -> uuid.UUID:
    domain = make_domain(engine)
    user = make_user(engine, domain)
    source = make_source(engine, domain, "synthetic", {"total": total, "page_size": 1000})
    job_id = make_job(engine, domain, source, {"delay_s": delay_s}, user)
    with Session(engine) as session, session.begin():
        moved = job_states.start(session, job_id)
    enqueue_job(job_id, moved.queue)
    return job_id


def job_row(engine: Engine, job_id: uuid.UUID) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def assert_exactly_once(engine: Engine, job_id: uuid.UUID, total: int = TOTAL) -> None:
    """The final lead set is complete, nothing doubled, and the page history is clean."""
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "completed", job and (job.status, job.error)
        leads = session.scalar(select(func.count()).select_from(Lead))
        distinct_emails = session.scalar(select(func.count(func.distinct(Lead.email))))
        provenance = session.scalar(
            select(func.count()).select_from(LeadSource).where(LeadSource.job_id == job_id)
        )
        pages: list[dict[str, Any]] = list(
            session.scalars(
                select(JobLog.fields)
                .where(JobLog.job_id == job_id, JobLog.event == "page.committed")
                .order_by(JobLog.seq)
            )
        )
        source = session.get(DataSource, job.data_source_id)
    assert leads == distinct_emails == total
    assert provenance == total
    assert job.inserted == total and job.fetched == total
    # the source counts every lead of the job, whatever stopped and restarted it (its only job)
    assert source is not None
    assert (source.leads_total, source.jobs_total, source.jobs_failed) == (total, 1, 0)
    # the recorded history: each page starts where the previous one ended, none twice
    assert sum(p["inserted"] for p in pages) == total
    befores = [(p["checkpoint_before"] or {}).get("next", 0) for p in pages]
    afters = [p["checkpoint"]["next"] for p in pages]
    assert befores == [0, *afters[:-1]]
    assert afters == sorted(set(afters))


def committed_pages(engine: Engine, job_id: uuid.UUID) -> int:
    return job_row(engine, job_id).pages


@pytest.mark.parametrize("kill_after_pages", [2, 35, 80])
def test_kill_9_mid_job_then_another_worker_finishes(
    cluster: Cluster, engine: Engine, kill_after_pages: int
) -> None:
    cluster.start_reaper()
    job_id = start_job(engine)
    first = cluster.start_worker()
    wait_until(lambda: committed_pages(engine, job_id) >= kill_after_pages, 120, "pages")
    lease_before = job_row(engine, job_id).lease
    # When the worker is SIGKILLed mid-job and another one starts
    cluster.kill(first)
    killed_at = time.monotonic()
    cluster.start_worker()
    # Then the job is running again (a new lease) within 30 s and completes exactly once
    wait_until(
        lambda: (j := job_row(engine, job_id)).lease > lease_before and j.status != "queued",
        30,
        "the job to run again",
    )
    assert time.monotonic() - killed_at < 30
    wait_until(lambda: job_row(engine, job_id).status == "completed", 180, "completion")
    assert_exactly_once(engine, job_id)


def test_recovery_within_30s_with_default_heartbeat_timeout(
    engine: Engine, db_url: str, redis_url: str, settings_env: None
) -> None:
    c = Cluster(engine, db_url, redis_url, heartbeat_s=get_settings().heartbeat_timeout_s)
    try:
        c.start_reaper(interval_s=get_settings().reap_interval_s)
        job_id = start_job(engine, total=40_000, delay_s=0.05)
        first = c.start_worker()
        wait_until(lambda: committed_pages(engine, job_id) >= 3, 60, "pages")
        lease = job_row(engine, job_id).lease
        c.kill(first)
        c.start_worker()
        took = wait_until(lambda: job_row(engine, job_id).lease > lease, 30, "takeover")
        assert took < 30
        wait_until(lambda: job_row(engine, job_id).status == "completed", 120, "completion")
        assert_exactly_once(engine, job_id, total=40_000)
    finally:
        c.close()


def test_redis_loses_everything_mid_job(cluster: Cluster, engine: Engine) -> None:
    cluster.start_reaper()
    job_id = start_job(engine)
    first = cluster.start_worker()
    wait_until(lambda: committed_pages(engine, job_id) >= 10, 120, "pages")
    # When the worker dies and Redis loses every queue and ack set
    cluster.kill(first)
    redis.Redis.from_url(cluster.redis_url).flushdb()
    cluster.start_worker()
    # Then the reaper brings the job back and it completes with the same lead set
    wait_until(lambda: job_row(engine, job_id).status == "completed", 180, "completion")
    assert_exactly_once(engine, job_id)


def test_a_lost_queued_message_is_sent_again(cluster: Cluster, engine: Engine) -> None:
    job_id = start_job(engine, total=5_000, delay_s=0)
    redis.Redis.from_url(cluster.redis_url).flushdb()  # the message is gone before any worker
    cluster.start_worker()
    cluster.start_reaper()
    wait_until(lambda: job_row(engine, job_id).status == "completed", 60, "completion")
    assert_exactly_once(engine, job_id, total=5_000)


def test_postgres_outage_mid_job(cluster: Cluster, engine: Engine, db_url: str) -> None:
    parts = urlsplit(db_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        proxied = urlunsplit(
            parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}")
        )
        cluster.start_reaper()
        job_id = start_job(engine)
        cluster.start_worker(db_url=proxied)
        wait_until(lambda: committed_pages(engine, job_id) >= 10, 120, "pages")
        # When every database connection of the worker dies and the server refuses for 3 s
        proxy.outage()
        time.sleep(2.0)  # the outage itself lasts a while: this is the fault, not a sync point
        proxy.recover()
        # Then the worker survives (reconnects; or the reaper re-queues) and the lead set is exact
        wait_until(lambda: job_row(engine, job_id).status == "completed", 180, "completion")
        assert_exactly_once(engine, job_id)
        assert cluster.workers[0].poll() is None  # the worker process is still alive
    finally:
        proxy.close()


def test_sigterm_hands_the_job_back_cleanly(cluster: Cluster, engine: Engine) -> None:
    job_id = start_job(engine)
    first = cluster.start_worker()
    wait_until(lambda: committed_pages(engine, job_id) >= 5, 120, "pages")
    cluster.kill(first, signal.SIGTERM)
    assert first.returncode == 0
    job = job_row(engine, job_id)
    assert job.status == "queued" and job.attempts == 0
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == job.inserted
    # The re-enqueued message is picked up by the next worker
    cluster.start_worker()
    wait_until(lambda: job_row(engine, job_id).status == "completed", 180, "completion")
    assert_exactly_once(engine, job_id)


def test_duplicate_delivery_runs_the_job_once(cluster: Cluster, engine: Engine) -> None:
    job_id = start_job(engine, total=20_000)
    enqueue_job(job_id, "synthetic")  # a redelivered copy of the message
    cluster.start_worker()
    cluster.start_worker()
    wait_until(lambda: job_row(engine, job_id).status == "completed", 120, "completion")
    assert_exactly_once(engine, job_id, total=20_000)
    with Session(engine) as session:
        acquisitions = session.scalar(
            select(func.count()).where(JobLog.job_id == job_id, JobLog.event == "job.acquire")
        )
    assert acquisitions == 1


@pytest.fixture
def private_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of this test's own, which it may crash and restart.

    Its data lives under the checkout's `.dashin-test/` (where the embedded test server lives),
    not pytest's temp directory: as root the server runs as another user, which must be able
    to reach the directory, and pytest makes its temp root private to the caller.
    """
    import migrations

    pg = EmbeddedPostgres(ROOT / ".dashin-test" / f"pg-restart-{uuid.uuid4().hex[:8]}")
    pg.start()
    try:
        migrations.upgrade(pg.url().replace("postgresql+psycopg://", "postgresql://"))
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(pg.root, ignore_errors=True)


def test_postgres_crash_and_restart_mid_job(
    private_postgres: EmbeddedPostgres, redis_url: str, settings_env: None
) -> None:
    db_url = private_postgres.url().replace("postgresql+psycopg://", "postgresql://")
    engine = make_engine(db_url)
    cluster = Cluster(engine, db_url, redis_url, heartbeat_s=3.0)
    try:
        cluster.start_reaper()
        job_id = start_job(engine)
        cluster.start_worker()
        wait_until(lambda: committed_pages(engine, job_id) >= 10, 120, "pages")
        # When the server crashes (immediate shutdown: no checkpoint, every backend killed,
        # crash recovery on the next start) and comes back on the same port
        pages_before = committed_pages(engine, job_id)
        private_postgres.crash()
        private_postgres.start()
        # Then the worker carries on (or the reaper re-queues) and the lead set is exact
        wait_until(lambda: job_row(engine, job_id).status == "completed", 180, "completion")
        assert_exactly_once(engine, job_id)
        assert job_row(engine, job_id).pages > pages_before
        assert cluster.workers[0].poll() is None  # the worker process survived the restart
    finally:
        cluster.close()
        engine.dispose()


def commits_after_each(engine: Engine, job_id: uuid.UUID, event: str) -> list[list[int]]:
    """For each `event` log line: the `pages` of every commit before the next `job.settle`."""
    with Session(engine) as session:
        lines = session.execute(
            select(JobLog.event, JobLog.fields).where(JobLog.job_id == job_id).order_by(JobLog.seq)
        ).all()
    windows: list[list[int]] = []
    current: list[int] | None = None
    for name, fields in lines:
        if name == event:
            current = []
        elif name == "job.settle" and current is not None:
            windows.append(current)
            current = None
        elif name == "page.committed" and current is not None:
            current.append(int(cast(dict[str, Any], fields)["pages"]))
    return windows


def test_ten_pauses_and_resumes_then_exactly_once(cluster: Cluster, engine: Engine) -> None:
    job_id = start_job(engine, delay_s=0.02)
    cluster.start_worker()
    for _ in range(10):
        # When the job has moved on since the last resume, pause it
        pages = committed_pages(engine, job_id)
        wait_until(lambda: committed_pages(engine, job_id) > pages, 120, "a new page")  # noqa: B023
        with Session(engine) as session, session.begin():
            requested = job_states.pause(session, job_id)
        if requested.status == "paused":  # it was queued between two acquisitions
            break
        wait_until(lambda: job_row(engine, job_id).status == "paused", 30, "paused")
        # Then it stopped after at most the commit in flight, and a resume picks it up again
        with Session(engine) as session, session.begin():
            moved = job_states.resume(session, job_id)
        enqueue_job(job_id, moved.queue)
    windows = commits_after_each(engine, job_id, "job.pause")
    assert len(windows) == 10
    assert all(len(w) <= 1 for w in windows), windows
    wait_until(lambda: job_row(engine, job_id).status == "completed", 180, "completion")
    assert_exactly_once(engine, job_id)
    with Session(engine) as session:
        started = session.scalar(
            select(func.count()).where(JobLog.job_id == job_id, JobLog.event == "job.started")
        )
    assert started == 11  # ten resumes, each a new run from the checkpoint
