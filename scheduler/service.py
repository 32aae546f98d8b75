"""The `dashin scheduler` process: stand by for the leader lock, then tick, reap and listen.

One loop turn as leader: check the lock connection (step down if it failed), `tick(now)`, run
the reaper when `reap_interval_s` has passed, delete expired idempotency keys every
`IDEMPOTENCY_PURGE_S`, resync the whole table when `resync_interval_s` has passed, start a
backup in its own thread when `DASHIN_BACKUP_CRON` says (`scheduler.backups`), then wait
on the lock connection for `NOTIFY schedules` until the next slot, enqueue, reap or resync is
due (at most `max_idle_s`, which bounds how long a stop takes).
A NOTIFY wakes the loop at once, so an edit made through the API takes effect within a turn.

A database error other than losing the lock is logged and retried after a pause; losing the
lock drops the mirror and sends the process back to standby. On stop, the jittered enqueues
still waiting are sent at once (early rather than up to `queued_grace_s` late) and the lock
connection is closed, which frees the lock for a standby immediately.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from runtime.db import make_engine, session_scope
from runtime.logging import configure_logging, get_logger
from runtime.settings import Settings, get_settings
from scheduler.backups import BackupTimer
from scheduler.config import LEADER_LOCK_KEY, SchedulerConfig, load_scheduler_config
from scheduler.leader import LeaderLock, LeadershipLost
from scheduler.loop import Enqueue, Scheduler, utc_now
from scheduler.outbox_sweep import sweep_outbox
from scheduler.purge import PURGE_INTERVAL_S, purge_turn
from scheduler.reaper import reap_once
from workers.enqueue import enqueue_job, install_doorbell

log = get_logger("scheduler.service")

_ERROR_BACKOFF_S = 1.0


class SchedulerService:
    """Leadership plus timing around a `Scheduler`; `run(stop)` returns when `stop` is set."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        config: SchedulerConfig,
        lock: LeaderLock,
        *,
        enqueue: Enqueue = enqueue_job,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._config = config
        self._lock = lock
        self._enqueue = enqueue
        self._clock = clock
        self.scheduler = Scheduler(
            engine, config, queued_grace_s=settings.queued_grace_s, enqueue=enqueue
        )
        self._next_reap = 0.0
        self._next_resync = 0.0
        self._next_scores = 0.0
        self._next_purge = 0.0
        self.backups = BackupTimer(engine, settings, clock())
        self._next_retention = 0.0

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                if not self._lock.held and not self._elect():
                    # Jittered enqueues left from a lost leadership are still ours to send.
                    self.scheduler.flush_enqueues(self._clock())
                    stop.wait(self._config.standby_poll_s)
                    continue
                try:
                    self._turn()
                except LeadershipLost as exc:
                    log.warning("leader.lost", reason=exc.message)
                    self.scheduler.clear()
                except SQLAlchemyError as exc:
                    log.error("scheduler.db_error", error=str(exc))
                    stop.wait(_ERROR_BACKOFF_S)
        finally:
            sent = self.scheduler.flush_enqueues()
            if sent:
                log.info("scheduler.flushed_enqueues", count=len(sent))
            self._lock.release()
            log.info("scheduler.stopped")

    def _elect(self) -> bool:
        if not self._lock.try_acquire():
            return False
        log.info("leader.elected", application_name=self._lock.application_name)
        try:
            self.scheduler.resync()
        except SQLAlchemyError as exc:
            log.error("scheduler.db_error", error=str(exc))
            self._lock.release()
            return False
        self._next_resync = self._clock().timestamp() + self._config.resync_interval_s
        return True

    def _turn(self) -> None:
        self._lock.check()
        now = self._clock()
        self.scheduler.tick(now)
        if now.timestamp() >= self._next_reap:
            reap_once(self._engine, self._settings, self._enqueue)
            sweep_outbox(self._engine, self._settings)
            self._next_reap = now.timestamp() + self._settings.reap_interval_s
        if now.timestamp() >= self._next_scores:
            self._refresh_scores()
            self._next_scores = now.timestamp() + SCORE_REFRESH_S
        if now.timestamp() >= self._next_purge:
            self._purge_idempotency_keys()
            self._next_purge = now.timestamp() + IDEMPOTENCY_PURGE_S
        if now.timestamp() >= self._next_retention:
            purge_turn(self._engine)
            self._next_retention = now.timestamp() + PURGE_INTERVAL_S
        if now.timestamp() >= self._next_resync:
            self.scheduler.resync()
            self._next_resync = now.timestamp() + self._config.resync_interval_s
        self.backups.due(now)
        deadlines = [self._next_reap, self._next_resync, now.timestamp() + self._config.max_idle_s]
        if self.backups.next_at is not None:
            deadlines.append(self.backups.next_at.timestamp())
        wakeup = self.scheduler.next_wakeup()
        if wakeup is not None:
            deadlines.append(wakeup.timestamp())
        timeout = max(0.0, min(deadlines) - self._clock().timestamp())
        changed = self._lock.wait_for_notifications(timeout)
        if changed:
            self.scheduler.refresh(changed)

    def _refresh_scores(self) -> None:
        """Lead scores have a recency term that moves with time, not with writes."""
        from models.scoring import refresh_scores

        with session_scope(self._engine) as session:
            changed = refresh_scores(session)
        if changed:
            log.info("scores.refreshed", leads=changed)

    def _purge_idempotency_keys(self) -> None:
        """Idempotency keys replay for 24 h; expired ones are only dead weight."""
        from models.idempotency import purge_expired

        with session_scope(self._engine) as session:
            purged = purge_expired(session)
        if purged:
            log.info("idempotency.purged", keys=purged)


SCORE_REFRESH_S = 3600.0
#: how often expired idempotency keys are deleted (they expire 24 h after their first use)
IDEMPOTENCY_PURGE_S = 600.0


def run_scheduler(stop_event: threading.Event | None = None) -> None:
    """Run the scheduler process until `stop_event` is set (the `dashin scheduler` command)."""
    settings = get_settings()
    configure_logging(settings)
    install_doorbell()  # events of the reaper's moves (job.paused, job.cancelled) go out at once
    config = load_scheduler_config()
    url = settings.require_database_url()
    engine = make_engine(url, pool_size=2, application_name="dashin.scheduler")
    lock = LeaderLock(url, LEADER_LOCK_KEY)
    log.info("scheduler.starting", misfire_grace_s=config.misfire_grace_s)
    try:
        SchedulerService(engine, settings, config, lock).run(stop_event or threading.Event())
    finally:
        engine.dispose()
