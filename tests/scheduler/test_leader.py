"""Leader election on a dedicated connection: one holder, step-down when the connection drops,
and the process loop (`run_scheduler`) stopping on its event."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text, update

from models import Job
from models.job_states import start
from models.jobs_repo import create_job
from runtime.db import session_scope
from runtime.errors import ConfigurationError
from scheduler.config import LEADER_LOCK_KEY, SchedulerConfig, load_scheduler_config
from scheduler.leader import LeaderLock, LeadershipLost
from scheduler.service import run_scheduler
from tests.scheduler.conftest import Source


def _holder_backend(engine: Engine) -> int | None:
    with engine.connect() as conn:
        pid = conn.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    return int(pid) if pid is not None else None


def _terminate(engine: Engine, backend_pid: int) -> None:
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})


def _wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_one_holder_at_a_time_and_release_hands_over(db_url: str) -> None:
    first, second = LeaderLock(db_url, LEADER_LOCK_KEY), LeaderLock(db_url, LEADER_LOCK_KEY)
    try:
        assert first.try_acquire()
        first.check()
        assert not second.try_acquire()
        assert not second.held
        first.release()
        assert second.try_acquire()
        second.check()
    finally:
        first.release()
        second.release()


def test_leader_steps_down_when_its_connection_drops(db_url: str, engine: Engine) -> None:
    lock, standby = LeaderLock(db_url, LEADER_LOCK_KEY), LeaderLock(db_url, LEADER_LOCK_KEY)
    try:
        assert lock.try_acquire()
        backend = _holder_backend(engine)
        assert backend is not None
        # When the server ends the lock's session (crash, failover, idle killer)
        _terminate(engine, backend)
        # Then the check fails, the lock is no longer held, and a standby gets it
        with pytest.raises(LeadershipLost):
            lock.check()
        assert not lock.held
        assert _wait_for(standby.try_acquire, 5, "the standby to take the lock")
        with pytest.raises(LeadershipLost):
            lock.wait_for_notifications(0.1)
    finally:
        lock.release()
        standby.release()


def _stale_running_job(engine: Engine, source: Source) -> uuid.UUID:
    with session_scope(engine) as session:
        job = create_job(session, domain_id=source.domain_id, data_source_id=source.data_source_id)
        assert job is not None
        start(session, job.id)
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status="running", lease=1, heartbeat_at=func.now() - timedelta(hours=1))
        )
        return job.id


def _status_and_lease(engine: Engine, job_id: uuid.UUID) -> tuple[str, int]:
    with session_scope(engine) as session:
        row = session.execute(select(Job.status, Job.lease).where(Job.id == job_id)).one()
        return str(row.status), int(row.lease)


def test_run_scheduler_reaps_re_elects_after_losing_its_connection_and_stops_on_event(
    settings_env: None, engine: Engine, source: Source
) -> None:
    stale = _stale_running_job(engine, source)
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(stop,), daemon=True)
    thread.start()
    try:
        backend = _wait_for(lambda: _holder_backend(engine), 20, "the leader lock")
        assert isinstance(backend, int)
        # The leader runs the reaper: the stale job is back in the queue with a new lease
        _wait_for(lambda: _status_and_lease(engine, stale) == ("queued", 2), 10, "the reaper")
        _terminate(engine, backend)
        # It notices, steps down, and (alone) is elected again on a new connection
        _wait_for(
            lambda: (pid := _holder_backend(engine)) is not None and pid != backend,
            10,
            "re-election",
        )
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert _holder_backend(engine) is None  # stopping released the lock


def test_config_reads_env_and_names_a_bad_variable() -> None:
    assert load_scheduler_config({}) == SchedulerConfig()
    assert load_scheduler_config({"DASHIN_MISFIRE_GRACE_S": "45"}).misfire_grace_s == 45.0
    with pytest.raises(ConfigurationError, match="DASHIN_MISFIRE_GRACE_S"):
        load_scheduler_config({"DASHIN_MISFIRE_GRACE_S": "soon"})
    with pytest.raises(ConfigurationError, match="DASHIN_SCHEDULER_RESYNC_S"):
        load_scheduler_config({"DASHIN_SCHEDULER_RESYNC_S": "0"})
