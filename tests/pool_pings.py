"""Counting the liveness pings of pooled connections (see `runtime.db`), for tests."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg


def record_pings(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """A list that gets the DBAPI connection of every ping from now until the test ends."""
    seen: list[object] = []
    original = PGDialect_psycopg.do_ping

    def counting(self: PGDialect_psycopg, dbapi_connection: Any) -> bool:
        seen.append(dbapi_connection)
        return bool(original(self, dbapi_connection))  # type: ignore[no-untyped-call]

    monkeypatch.setattr(PGDialect_psycopg, "do_ping", counting)
    return seen
