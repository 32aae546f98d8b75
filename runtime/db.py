"""Engine and session factories. The edge (a request, a job page) owns the session and commits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from runtime.settings import get_settings, sqlalchemy_url


def make_engine(url: str, *, pool_size: int = 5, application_name: str = "dashin") -> Engine:
    return create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # a restarted PostgreSQL leaves dead pooled connections behind
        pool_recycle=1800,
        connect_args={"application_name": application_name, "connect_timeout": 10},
    )


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(url: str | None = None) -> Engine:
    """This process's engine for `url` (default: the configured database), built once.

    Keyed by the resolved URL, so a settings change (tests) never returns a stale engine.
    """
    resolved = url or get_settings().require_database_url()
    with _engines_lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = _engines[resolved] = make_engine(resolved)
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
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
