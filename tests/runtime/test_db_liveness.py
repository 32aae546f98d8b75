"""Pooled connections: a dead one is never handed out, a healthy busy one is not pinged.

`runtime.db` replaced `pool_pre_ping` (a round trip per checkout) with a ping only when the
socket has input (a server closing a connection sends an error first) or the connection sat
idle longer than `PING_IDLE_AFTER_S`.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from runtime import db
from tests.pool_pings import record_pings


@pytest.fixture
def pool(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url, pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    return record_pings(monkeypatch)


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_in_steady_use_is_not_pinged(pool: Engine, pings: list[object]) -> None:
    first = backend_pid(pool)
    assert [backend_pid(pool) for _ in range(5)] == [first] * 5
    assert pings == []


def test_a_connection_the_server_closed_is_replaced_without_an_error(
    pool: Engine, db_url: str, pings: list[object]
) -> None:
    dead = backend_pid(pool)
    with psycopg.connect(db_url, autocommit=True) as admin:
        # The timeout makes the call wait until the backend has exited (and closed its socket).
        row = admin.execute("SELECT pg_terminate_backend(%s, 5000)", (dead,)).fetchone()
        assert row == (True,)
    fresh = backend_pid(pool)  # used a moment ago, yet not handed out dead
    assert fresh != dead
    assert len(pings) == 1  # the closed socket polled readable, so it was pinged


def test_a_connection_idle_too_long_is_pinged(
    pool: Engine, pings: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(pool)
    monkeypatch.setattr(db, "PING_IDLE_AFTER_S", 0.0)
    assert backend_pid(pool) == first
    assert len(pings) == 1
