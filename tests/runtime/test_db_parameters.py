"""SQL errors never carry their bound parameters (issue 14: "SQL errors log request data").

A SQLAlchemy statement error renders `[parameters: {...}]` in its str(), and errors are logged;
the engines the application builds hide them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from runtime.db import make_engine

CANARY = "canary-secret-4f1d"


def test_a_failing_statement_keeps_its_sql_but_not_its_parameters(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError) as caught:
            conn.execute(
                text("SELECT 1 / :zero, CAST(:canary AS text)"), {"zero": 0, "canary": CANARY}
            )
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "division by zero" in message and "SELECT 1 /" in message
    assert CANARY not in message and CANARY not in repr(caught.value)
