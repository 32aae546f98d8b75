"""The job's `RunContext`: what a connector may touch while a job runs, plus the heartbeat.

A heartbeat thread, not the connector, keeps `heartbeat_at` fresh (a connector stuck in one
slow request still looks alive), flushes buffered log lines (≤ 250 ms old) under the lease
fence, and notices a pause or cancel request, or that another runner took the job over.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import IO, Any

import redis
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from connectors.base import JobLogger, RateLimiter
from connectors.errors import ConfigError
from connectors.kit.ratelimit import RedisRateLimiter, rate_limit_key
from models import credits, job_states, row_security, suppressions, upload_reader
from models.job_statuses import STOPPING_STATUSES
from records import LeadRecord
from records.normalize import suppression_keys
from runtime.logging import get_logger
from runtime.settings import Settings
from workers.credentials import save_source_config
from workers.joblog import JobLogBuffer

_log = get_logger(__name__)


class JobContext:
    def __init__(
        self,
        *,
        engine: Engine,
        redis_client: redis.Redis | None,
        settings: Settings,
        job_id: uuid.UUID,
        lease: int,
        domain_id: uuid.UUID,
        data_source_id: uuid.UUID,
        sync_state: dict[str, Any],
        credit_budget: int | None,
        log: JobLogBuffer,
        shutdown: threading.Event,
    ) -> None:
        self.job_id = str(job_id)
        self.data_source_id = str(data_source_id)
        self.sync_state = sync_state
        self.credit_budget = credit_budget
        self.log: JobLogger = log
        self._buffer = log
        self._engine = engine
        self._redis = redis_client
        self._settings = settings
        self._job_uuid = job_id
        self._lease = lease
        self._domain_id = domain_id
        self._source_uuid = data_source_id
        self._shutdown = shutdown
        self._wake = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        #: 'pausing' / 'cancelling' (requested by the API), 'fenced' (job taken over)
        self.stop_reason: str | None = None
        self.interval_s = max(0.2, min(settings.heartbeat_timeout_s / 5, 5.0))

    # ---- RunContext ---------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Liveness is the heartbeat thread's job; a connector's call just wakes it early."""
        if self._buffer.due():
            self._wake.set()

    def should_stop(self) -> bool:
        """True on shutdown, a pause or cancel request, a take-over, and for good once the
        runner let go of the run (`stop`): an abandoned fetching thread ends at its next
        check, wait or retry."""
        return self._shutdown.is_set() or self.stop_reason is not None or self._done.is_set()

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + max(0.0, seconds)
        while not self.should_stop():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._shutdown.wait(min(left, 0.2))

    def rate_limiter(self, name: str, limit: int, period_s: float) -> RateLimiter:
        if self._redis is None:
            raise RuntimeError("no Redis configured for shared rate limits")
        return RedisRateLimiter(
            self._redis,
            rate_limit_key(self.data_source_id, name),
            limit,
            period_s,
            wait=self.wait,
            max_wait_s=self._settings.rate_limit_park_s,
        )

    def open_upload(self, file_id: str) -> IO[bytes]:
        return upload_reader.open_upload(
            self._engine, file_id, self._domain_id, self._source_uuid, missing=ConfigError
        )

    def _session(self) -> Session:
        """A session acting for the job's domain: the job's own transactions outside its pages
        (heartbeat, suppression checks, balances, saved tokens) run under row-level security
        too, as the runner's pages do."""
        return row_security.domain_session(self._engine, self._domain_id)

    def suppressed(self, records: Sequence[LeadRecord], provider: str) -> list[bool]:
        keys = [suppression_keys(r, provider) for r in records]
        with self._session() as session:
            hit = suppressions.suppressed_keys(
                session, self._domain_id, [k for found in keys for k in found]
            )
        return [not hit.isdisjoint(found) for found in keys]

    def report_balance(self, remaining: int) -> None:
        if self._done.is_set():  # an abandoned fetching thread writes nothing
            return
        with self._session() as session, session.begin():
            credits.set_balance(session, self._source_uuid, remaining)

    def save_config(self, changes: Mapping[str, str | int | None]) -> None:
        if self._done.is_set():  # an abandoned fetching thread writes nothing
            raise RuntimeError("the runner let go of this run: nothing more is saved")
        secret_key = self._settings.require_secret_key()
        save_source_config(self._engine, secret_key, self._domain_id, self._source_uuid, changes)

    # ---- heartbeat thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{self.job_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """The run is over: stop the heartbeat, and refuse the connector everything from now
        on (an abandoned fetching thread may still hold this context)."""
        self._done.set()
        self._buffer.close()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._done.is_set():
            self._wake.wait(0.25)
            self._wake.clear()
            if self._done.is_set():
                return
            if self._buffer.due() or time.monotonic() - last >= self.interval_s:
                try:
                    self.beat()
                    last = time.monotonic()
                except DBAPIError as exc:
                    # PostgreSQL restarting: keep trying; the reaper decides if we are too late.
                    _log.warning("heartbeat.failed", job_id=self.job_id, error=str(exc.orig))

    def beat(self) -> None:
        """One small transaction: heartbeat, pending log lines, and the desired state."""
        with self._buffer.flushing() as lines, self._session() as session, session.begin():
            status = job_states.heartbeat(session, self._job_uuid, self._lease, lines)
        if status is None:
            self.stop_reason = "fenced"
        elif status in STOPPING_STATUSES:
            self.stop_reason = status
