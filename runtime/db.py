"""Engine and session factories. The edge (a request, a job page) owns the session and commits."""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from runtime.settings import get_settings, sqlalchemy_url

#: A pooled connection unused for longer than this is pinged before it is handed out.
PING_IDLE_AFTER_S = 10.0


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    application_name: str = "dashin",
    statement_timeout_s: float | None = None,
) -> Engine:
    """An engine; with `statement_timeout_s`, PostgreSQL cancels any statement of its
    connections that runs longer (set once per connection, so it costs no round trip)."""
    connect_args: dict[str, Any] = {"application_name": application_name, "connect_timeout": 10}
    if statement_timeout_s:
        connect_args["options"] = (
            f"-c statement_timeout={max(1, round(statement_timeout_s * 1000))}"
        )
    engine = create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args=connect_args,
        # A statement error's str() would otherwise carry its bound values (request data,
        # secrets), and errors are logged: the SQL stays, the parameters never do.
        hide_parameters=True,
    )
    _check_liveness_on_checkout(engine)
    return engine


def _check_liveness_on_checkout(engine: Engine) -> None:
    """Hand out no dead connection (a restarted PostgreSQL leaves them behind), cheaply.

    `pool_pre_ping` costs a round trip on every checkout: a tenth of a small API request. A
    server that closes a connection (restart, `pg_terminate_backend`, idle timeout) sends an
    error and closes the socket, which then polls readable, while a healthy idle connection
    has nothing to read. So a connection is pinged only when its socket has input or it sat
    unused longer than `PING_IDLE_AFTER_S` (a middlebox may drop it silently); a failed ping
    raises `DisconnectionError`, on which the pool connects afresh, as `pool_pre_ping` does.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["dashin_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        idle_since = record.info.pop("dashin_idle_since", None)
        if idle_since is None:  # connected just now
            return
        if time.monotonic() - idle_since < PING_IDLE_AFTER_S and not _has_input(dbapi_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("pooled connection failed its ping") from exc


def _has_input(dbapi_connection: Any) -> bool:
    """Whether the server sent anything (an idle connection's answer is all read: a close)."""
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll(), or the socket is gone: ping
        return True


_engines: dict[tuple[str, float | None], Engine] = {}
_engines_lock = threading.Lock()
_statement_timeout_s: float | None = None


def limit_statement_time(seconds: float | None) -> None:
    """Engines `get_engine` hands out from now on cancel statements running longer than
    `seconds` (None or 0: no limit). The API process sets it (`DASHIN_API_STATEMENT_TIMEOUT_S`)
    so that no request costs unbounded database work; workers, whose pages are bounded by their
    own design, do not."""
    global _statement_timeout_s
    _statement_timeout_s = seconds or None


def get_engine(url: str | None = None) -> Engine:
    """This process's engine for `url` (default: the configured database), built once.

    Keyed by the resolved URL and the statement limit, so a settings change (tests) never
    returns a stale engine.
    """
    resolved = url or get_settings().require_database_url()
    key = (resolved, _statement_timeout_s)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = make_engine(resolved, statement_timeout_s=key[1])
        return engine


def reset_engines() -> None:
    """Dispose every cached engine (tests switch databases between cases)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with transaction(session_factory(engine)) as session:
        yield session


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session from `sessions` whose work commits when the block ends and rolls back when
    it raises (a request's session in the API, a unit of work elsewhere)."""
    session = sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
