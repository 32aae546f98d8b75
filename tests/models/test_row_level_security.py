"""Row-level security (issue 20): PostgreSQL keeps every domain's rows to that domain.

The tables under test are derived from the models, not listed: every table with a `domain_id`,
and every table without one that hangs off such a table by a foreign key (its rows belong to
the parent's domain). A table added later is covered, and fails here until migration 0025's
lists name it. tests/api/test_row_level_security.py runs the same sweep over data of every kind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

import models
from models import row_security
from runtime.settings import reset_settings_cache
from tests.factories import make_domain, make_job, make_source, make_upload, make_user

#: tables without tenant data, by decision (docs/operations.md, row-level security): identity
#: and platform records that span domains, read before any domain is known
NOT_TENANT = {"users", "domains", "auth_sessions", "refresh_tokens", "password_reset_tokens"}
# a console sign-in moves between its user's domains (`domain_id` is where it acts now)
NOT_TENANT |= {"backups", "console_sessions"}


#: tables whose reads a viewer limited to clients keeps to those clients (migration 0027)
CLIENT_LIMITED = {
    "clients",
    "campaigns",
    "leads",
    "links",
    "link_clicks",
    "lead_stats",
    "campaign_metrics",
}


def tenant_tables() -> dict[str, str]:
    """table → SQL of a row's domain (its own column, or its parent's through the foreign key)."""
    tables = models.Base.metadata.tables
    found = {
        name: "domain_id"
        for name, table in tables.items()
        if "domain_id" in table.c and name not in NOT_TENANT
    }
    for name, table in tables.items():
        for fk in table.foreign_keys:
            parent = fk.column.table
            if name not in found and name not in NOT_TENANT and "domain_id" in parent.c:
                found[name] = (
                    f"(SELECT p.domain_id FROM {parent.name} p "
                    f"WHERE p.{fk.column.name} = {name}.{fk.parent.name})"
                )
    return found


def counts_by_domain(conn: Connection, table: str, domain_sql: str) -> dict[uuid.UUID, int]:
    rows = conn.execute(text(f"SELECT {domain_sql} AS d, count(*) FROM {table} GROUP BY 1"))
    return {row[0]: int(row[1]) for row in rows if row[0] is not None}


def visible_counts(engine: Engine, domain_id: uuid.UUID | None) -> dict[str, int]:
    """Rows of each tenant table a transaction acting for `domain_id` sees (None: no domain
    set, still as the application role)."""
    with engine.connect() as conn, conn.begin():
        if domain_id is None:
            conn.execute(text(f"SET LOCAL ROLE {row_security.APP_ROLE}"))
        else:
            row_security.apply(conn, domain_id)
        assert row_security.current(conn) == (
            row_security.APP_ROLE,
            None if domain_id is None else str(domain_id),
        )
        return {
            table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in tenant_tables()
        }


@pytest.fixture
def rls_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHIN_RLS", "on")
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_every_table_is_tenant_data_or_decided_not_to_be() -> None:
    tables = set(models.Base.metadata.tables)
    assert tables - set(tenant_tables()) == NOT_TENANT
    assert {"job_logs", "job_record_errors", "upload_chunks"} <= set(tenant_tables())


def test_every_tenant_table_forces_a_domain_policy(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "array_agg(p.polname ORDER BY p.polname) FILTER (WHERE p.polname IS NOT NULL) "
                "FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid "
                "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' "
                "GROUP BY 1, 2, 3"
            )
        ).all()
    secured = {name: (on, forced, policies) for name, on, forced, policies in rows}
    for table in tenant_tables():
        expected = ["domain_isolation", "maintenance"]
        if table in CLIENT_LIMITED:
            expected = ["client_limit", *expected]
        assert secured[table] == (True, True, expected), table
    for table in NOT_TENANT:
        assert secured[table][:2] == (False, False), table


@pytest.fixture
def two_domains(engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    """Two domains with a member, a source, a job and an upload (chunks) each."""
    ids = []
    for _ in range(2):
        domain_id = make_domain(engine)
        make_user(engine, domain_id)
        source_id = make_source(engine, domain_id, type_="csv")
        make_job(engine, domain_id, source_id)
        make_upload(engine, domain_id, source_id, "email\nx@example.com\n")
        ids.append(domain_id)
    return ids[0], ids[1]


def test_the_app_role_sees_only_its_domain_and_nothing_without_one(
    engine: Engine, two_domains: tuple[uuid.UUID, uuid.UUID], rls_on: None
) -> None:
    a, b = two_domains
    with engine.connect() as conn:
        owner = {t: counts_by_domain(conn, t, d) for t, d in tenant_tables().items()}
    filled = {t for t, by in owner.items() if by.get(a) and by.get(b)}
    assert {"memberships", "data_sources", "jobs", "uploads", "upload_chunks"} <= filled
    for domain_id in (a, b):
        seen = visible_counts(engine, domain_id)
        assert seen == {t: owner[t].get(domain_id, 0) for t in tenant_tables()}
    assert set(visible_counts(engine, None).values()) == {0}


def test_a_write_into_another_domain_is_refused(
    engine: Engine, two_domains: tuple[uuid.UUID, uuid.UUID], rls_on: None
) -> None:
    a, b = two_domains
    with Session(engine) as session:
        row_security.act_for_domain(session, a)
        with pytest.raises(ProgrammingError, match="row-level security"):
            session.execute(
                text(
                    "INSERT INTO suppressions (domain_id, kind, key_hash, origin) "
                    "VALUES (:d, 'email', 'h', 'api')"
                ),
                {"d": b},
            )
        session.rollback()
        # B's rows cannot be changed either: the UPDATE finds none
        changed = session.execute(
            text("UPDATE data_sources SET name = 'taken' WHERE domain_id = :d"), {"d": b}
        )
        assert changed.rowcount == 0  # type: ignore[attr-defined]
        session.commit()


def test_a_session_keeps_its_domain_across_transactions(
    engine: Engine, two_domains: tuple[uuid.UUID, uuid.UUID], rls_on: None
) -> None:
    a, _ = two_domains
    with Session(engine) as session:
        # a query before the domain is known runs as the owner (authentication does)
        assert row_security.current(session.connection())[0] != row_security.APP_ROLE
        row_security.act_for_domain(session, a)  # mid-transaction
        assert row_security.current(session.connection()) == (row_security.APP_ROLE, str(a))
        session.commit()
        assert row_security.current(session.connection()) == (row_security.APP_ROLE, str(a))
    with engine.connect() as conn:  # the pooled connection carries nothing over
        assert row_security.current(conn)[0] != row_security.APP_ROLE


def test_off_leaves_the_owner(
    engine: Engine, two_domains: tuple[uuid.UUID, uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHIN_RLS", "off")
    reset_settings_cache()
    try:
        with row_security.domain_session(engine, two_domains[0]) as session:
            role, domain = row_security.current(session.connection())
            assert role != row_security.APP_ROLE and domain is None
    finally:
        reset_settings_cache()


def test_a_viewer_limited_to_a_client_reads_only_that_clients_rows(
    engine: Engine, rls_on: None
) -> None:
    """The role-dependent policy: with no Python condition at all, a limited viewer's
    transaction sees only its clients, their campaigns and those campaigns' leads and links."""
    domain_id = make_domain(engine)
    with engine.begin() as conn:
        mine, theirs = (
            conn.execute(
                text("INSERT INTO clients (domain_id, name) VALUES (:d, :n) RETURNING id"),
                {"d": domain_id, "n": name},
            ).scalar_one()
            for name in ("Mine", "Theirs")
        )  # type: uuid.UUID, uuid.UUID
        for client, count in ((mine, 2), (theirs, 3), (None, 1)):
            campaign: uuid.UUID = conn.execute(
                text(
                    "INSERT INTO campaigns (domain_id, name, slug, client_id) "
                    "VALUES (:d, :n, :n, :c) RETURNING id"
                ),
                {"d": domain_id, "n": f"for-{client}", "c": client},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO links (domain_id, campaign_id, destination_url, utm_source, "
                    "utm_medium, utm_campaign, full_url, short_code) VALUES (:d, :c, "
                    "'https://example.com', 's', 'm', 'c', 'https://example.com?x', :s)"
                ),
                {"d": domain_id, "c": campaign, "s": f"s{uuid.uuid4().hex[:8]}"},
            )
            for _ in range(count):
                conn.execute(
                    text("INSERT INTO leads (domain_id, campaign_id, email) VALUES (:d, :c, :e)"),
                    {"d": domain_id, "c": campaign, "e": f"{uuid.uuid4().hex}@example.com"},
                )

    def seen(clients: tuple[uuid.UUID, ...] | None) -> dict[str, int]:
        with Session(engine) as session:
            row_security.act_for_domain(session, domain_id, clients)
            return {
                table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("clients", "campaigns", "leads", "links", "lead_stats")
            }

    everyone = seen(None)
    assert everyone["clients"] == 2 and everyone["campaigns"] == 3 and everyone["leads"] == 6
    limited = seen((mine,))
    assert limited["clients"] == 1 and limited["campaigns"] == 1
    assert limited["leads"] == 2 and limited["links"] == 1
    assert 0 < limited["lead_stats"] < everyone["lead_stats"]
    assert set(seen(()).values()) == {0}  # limited to no client: nothing
