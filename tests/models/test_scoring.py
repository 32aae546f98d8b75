"""The score formula: the SQL function and trigger agree with the Python reference."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.leads import LEAD_PRIORITIES, LEAD_STATUSES
from models.scoring import COMPLETENESS_FIELDS, lead_score

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.sampled_from(LEAD_STATUSES),
    priority=st.sampled_from(LEAD_PRIORITIES),
    qualification=st.one_of(st.none(), st.integers(1, 5)),
    filled=st.integers(0, len(COMPLETENESS_FIELDS)),
    age=st.timedeltas(timedelta(0), timedelta(days=400)),
)
def test_sql_function_matches_the_python_reference(
    conn: psycopg.Connection[tuple[object, ...]],
    status: str,
    priority: str,
    qualification: int | None,
    filled: int,
    age: timedelta,
) -> None:
    expected = lead_score(
        status=status,
        priority=priority,
        qualification_score=qualification,
        filled_fields=filled,
        created_at=NOW - age,
        now=NOW,
    )
    row = conn.execute(
        "SELECT lead_score(%s, %s, %s, %s, %s, %s)",
        (status, priority, qualification, filled, NOW - age, NOW),
    ).fetchone()
    assert row is not None and row[0] == expected
    assert 0 <= expected <= 100


def test_extremes() -> None:
    best = lead_score(
        status="converted",
        priority="high",
        qualification_score=5,
        filled_fields=len(COMPLETENESS_FIELDS),
        created_at=NOW,
        now=NOW,
    )
    worst = lead_score(
        status="rejected",
        priority="low",
        qualification_score=None,
        filled_fields=0,
        created_at=NOW - timedelta(days=91),
        now=NOW,
    )
    assert (best, worst) == (100, 0)


@pytest.mark.parametrize(
    ("days", "points"), [(7, 10), (7.01, 6), (30, 6), (30.01, 3), (90, 3), (90.01, 0)]
)
def test_recency_steps(days: float, points: int) -> None:
    base = lead_score(
        status="rejected",
        priority="low",
        qualification_score=None,
        filled_fields=0,
        created_at=NOW - timedelta(days=days),
        now=NOW,
    )
    assert base == points


def test_trigger_scores_rows_written_by_plain_sql(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    # Given a row inserted the way the sink does (plain SQL, no score given)
    domain = conn.execute(
        "INSERT INTO domains (domain_name) VALUES ('s.example') RETURNING id"
    ).fetchone()
    assert domain is not None
    row = conn.execute(
        "INSERT INTO leads (domain_id, email, phone, title) "
        "VALUES (%s, 'a@s.example', '1', 'CTO') RETURNING id, score",
        (domain[0],),
    ).fetchone()
    assert row is not None and row[1] == 5 + 5 + 3 * 2 + 10
    # When any input changes, the score follows
    updated = conn.execute(
        """UPDATE leads SET status = 'qualified', priority = 'high', qualification = '{"score": 4}'
           WHERE id = %s RETURNING score""",
        (row[0],),
    ).fetchone()
    assert updated is not None and updated[0] == 30 + 20 + 10 + 3 * 2 + 10
