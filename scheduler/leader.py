"""Leader election: a PostgreSQL session-level advisory lock held on a dedicated connection.

Why a dedicated psycopg connection and not the engine's pool: a session-level advisory lock lives
on exactly one server backend. A pooled connection would be handed to other code, recycled or
pre-pinged into a new backend, and the lock would vanish or leak silently (NOTES.md). So the lock
connection does three things only: hold the lock, LISTEN on `schedules`, and prove it is alive.

Liveness: every loop turn runs a query on that connection that also checks `pg_locks`; libpq TCP
keepalives and `tcp_user_timeout` make a half-open connection fail within seconds rather than
minutes. Any failure raises `LeadershipLost`, and the caller stops firing at once. When a leader
process dies, its backend ends, PostgreSQL frees the lock, and a standby polling
`pg_try_advisory_lock` every `standby_poll_s` takes over.
"""

from __future__ import annotations

import contextlib
import os

import psycopg
from psycopg.conninfo import make_conninfo

from runtime.errors import TransientFailure
from runtime.logging import get_logger

log = get_logger("scheduler.leader")

# libpq options: fail a half-open connection within seconds, not the kernel's minutes.
_CONNECT_OPTIONS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}


class LeadershipLost(TransientFailure):
    """The lock connection failed or no longer holds the lock: stop acting as leader now."""

    code = "leadership_lost"


class LeaderLock:
    """Try, check and release the scheduler leader lock on a connection of its own."""

    def __init__(self, url: str, key: int, *, listen_channel: str = "schedules") -> None:
        self._url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._key = key
        self._channel = listen_channel
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._held = False
        self.application_name = f"dashin.scheduler.{os.getpid()}"

    @property
    def held(self) -> bool:
        return self._held

    def try_acquire(self) -> bool:
        """One non-blocking attempt. True: we are the leader and LISTENing."""
        try:
            conn = self._connection()
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
            if not (row and row[0]):
                return False
            conn.execute(f'LISTEN "{self._channel}"')
        except psycopg.Error as exc:
            log.warning("leader.connect_failed", error=str(exc))
            self._drop()
            return False
        self._held = True
        return True

    def check(self) -> None:
        """Raise `LeadershipLost` unless the connection is alive and still holds the lock."""
        if not self._held or self._conn is None:
            raise LeadershipLost("not the leader")
        try:
            row = self._conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid() AND granted"
                " AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1)",
                ((self._key >> 32) & 0xFFFFFFFF, self._key & 0xFFFFFFFF),
            ).fetchone()
        except psycopg.Error as exc:
            self._drop()
            raise LeadershipLost(f"lock connection failed: {exc}") from exc
        if not (row and row[0]):
            self._drop()
            raise LeadershipLost("the advisory lock is no longer held")

    def wait_for_notifications(self, timeout: float) -> set[str]:
        """Block up to `timeout` seconds for NOTIFYs; return their payloads (schedule ids)."""
        if not self._held or self._conn is None:
            raise LeadershipLost("not the leader")
        payloads: set[str] = set()
        try:
            for notify in self._conn.notifies(timeout=max(timeout, 0.0), stop_after=1):
                payloads.add(notify.payload)
            if payloads:  # take whatever else has already arrived, without waiting
                for notify in self._conn.notifies(timeout=0):
                    payloads.add(notify.payload)
        except psycopg.Error as exc:
            self._drop()
            raise LeadershipLost(f"lock connection failed: {exc}") from exc
        return payloads

    def release(self) -> None:
        """Give the lock up: unlock explicitly (closing alone frees it only once the server has
        noticed the disconnect, so a standby could miss its next try), then close."""
        if self._held and self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        self._drop()

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conninfo = make_conninfo(
                self._url, application_name=self.application_name, **_CONNECT_OPTIONS
            )
            self._conn = psycopg.connect(conninfo, autocommit=True)
        return self._conn

    def _drop(self) -> None:
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
