"""Database work for `async` endpoints, run in worker threads with short sessions of their own.

The SSE endpoints and the streaming upload are `async` (they wait on the network and on
notifications), but the repositories are sync. Running a repository call directly in the event
loop would stall every open stream of the process while PostgreSQL answers, so each read runs in
a worker thread with its own short session; nothing holds a pooled connection while a stream
merely waits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from runtime.db import get_engine, session_factory
from runtime.settings import get_settings

T = TypeVar("T")


def engine() -> Engine:
    """The process's engine (the same pool `SessionDep` uses)."""
    return get_engine(get_settings().require_database_url())


def sessions() -> sessionmaker[Session]:
    """Sessions on the process's engine (the same pool `SessionDep` uses)."""
    return session_factory(get_engine(get_settings().require_database_url()))


def in_session(fn: Callable[[Session], T]) -> T:
    """Run `fn` in one transaction: committed if it returns, rolled back if it raises."""
    with sessions()() as session, session.begin():
        return fn(session)


async def run_db(fn: Callable[[Session], T]) -> T:
    """`in_session(fn)` in a worker thread, so the event loop keeps serving other streams."""
    return await anyio.to_thread.run_sync(in_session, fn)
