"""The database itself rejects bad data, not only Python."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors


def _exec(db_url: str, sql: str, *params: object) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql, params)


def _domain(db_url: str, name: str = "acme.example") -> uuid.UUID:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO domains (domain_name) VALUES (%s) RETURNING id", (name,)
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def test_bad_enum_value_is_rejected(db_url: str) -> None:
    with pytest.raises(errors.CheckViolation):
        _exec(
            db_url, "INSERT INTO domains (domain_name, subscription_status) VALUES ('x.io', 'gold')"
        )
    domain = _domain(db_url)
    with pytest.raises(errors.CheckViolation):
        _exec(
            db_url,
            "INSERT INTO campaigns (domain_id, name, slug, status) VALUES (%s, 'c', 'c', 'live')",
            domain,
        )


def test_duplicate_domain_name_is_rejected(db_url: str) -> None:
    _domain(db_url, "dup.example")
    with pytest.raises(errors.UniqueViolation):
        _domain(db_url, "dup.example")


def test_user_email_is_unique_case_insensitively(db_url: str) -> None:
    _exec(db_url, "INSERT INTO users (email) VALUES ('Ann@Example.com')")
    with pytest.raises(errors.UniqueViolation):
        _exec(db_url, "INSERT INTO users (email) VALUES ('ann@example.COM')")


def test_duplicate_lead_key_in_one_domain_is_rejected(db_url: str) -> None:
    domain = _domain(db_url)
    other = _domain(db_url, "other.example")
    with psycopg.connect(db_url, autocommit=True) as conn:
        leads = [
            conn.execute("INSERT INTO leads (domain_id) VALUES (%s) RETURNING id", (d,)).fetchone()
            for d in (domain, domain, other)
        ]
    assert all(leads)
    _exec(
        db_url,
        "INSERT INTO lead_keys (domain_id, key, lead_id) VALUES (%s, 'email:a@b.c', %s)",
        domain,
        leads[0][0],
    )  # type: ignore[index]
    with pytest.raises(errors.UniqueViolation):
        _exec(
            db_url,
            "INSERT INTO lead_keys (domain_id, key, lead_id) VALUES (%s, 'email:a@b.c', %s)",
            domain,
            leads[1][0],
        )  # type: ignore[index]
    # the same key in another domain is fine: tenants never share identities
    _exec(
        db_url,
        "INSERT INTO lead_keys (domain_id, key, lead_id) VALUES (%s, 'email:a@b.c', %s)",
        other,
        leads[2][0],
    )  # type: ignore[index]


def test_membership_for_a_missing_user_is_rejected(db_url: str) -> None:
    domain = _domain(db_url)
    with pytest.raises(errors.ForeignKeyViolation):
        _exec(
            db_url,
            "INSERT INTO memberships (domain_id, user_id, role) VALUES (%s, %s, 'member')",
            domain,
            uuid.uuid4(),
        )


def test_job_counters_must_balance(db_url: str) -> None:
    domain = _domain(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        source = conn.execute(
            "INSERT INTO data_sources (domain_id, type, name) VALUES (%s, 'csv', 's') RETURNING id",
            (domain,),
        ).fetchone()
        assert source is not None
        with pytest.raises(errors.CheckViolation):
            conn.execute(
                "INSERT INTO jobs (domain_id, data_source_id, queue, fetched, inserted) "
                "VALUES (%s, %s, 'csv', 5, 4)",
                (domain, source[0]),
            )
