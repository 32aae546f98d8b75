"""The migration history: up from empty, down to base, up again, and no drift from the models;
`dashin migrate` as a login that may not create roles (a managed PostgreSQL)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import sql
from sqlalchemy import create_engine, inspect

import migrations
import models
from models import row_security
from runtime.settings import sqlalchemy_url
from tests import services


def _drift(url: str) -> list[object]:
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), models.Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_and_no_drift(pg_admin_url: str) -> None:
    with services.scratch_database(pg_admin_url) as url:
        migrations.upgrade(url)
        assert _drift(url) == []
        migrations.downgrade(url, "base")
        engine = create_engine(sqlalchemy_url(url))
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        engine.dispose()
        migrations.upgrade(url)
        assert _drift(url) == []
        tables = set(models.Base.metadata.tables)
        engine = create_engine(sqlalchemy_url(url))
        with engine.connect() as conn:
            assert tables <= set(inspect(conn).get_table_names())
        engine.dispose()


def test_updated_at_is_maintained_by_the_database(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO domains (domain_name) VALUES ('t.example')")
        before = conn.execute("SELECT updated_at FROM domains").fetchone()
        conn.execute("UPDATE domains SET subscription_status = 'active'")
        after = conn.execute("SELECT updated_at FROM domains").fetchone()
    assert before and after and after[0] > before[0]


@pytest.mark.slow
def test_migrations_on_the_embedded_postgres(tmp_path: Path) -> None:
    from runtime.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(tmp_path / "home")
    url = pg.start()
    try:
        migrations.upgrade(url)
        assert _drift(url) == []
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()
        assert version and int(version[0]) >= 180000
    finally:
        pg.stop()


def _as_login(url: str, login: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{login}:{password}@{parts.hostname}:{parts.port}"))


def _dashin_migrate(url: str) -> subprocess.CompletedProcess[str]:
    """`dashin migrate` in a process of its own, as an operator runs it."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "COLUMNS": "500",  # the error on one line
        "DASHIN_ENV": "development",
        "DASHIN_SECRET_KEY": "x" * 40,
        "DATABASE_URL": url,
    }
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@contextmanager
def _managed_login(admin_url: str) -> Iterator[tuple[str, str]]:
    """(login, URL): a login without CREATEROLE that owns a fresh, empty database, as a managed
    PostgreSQL hands one out. Both go afterwards."""
    login, password = services.unique_name("dashin_login"), uuid.uuid4().hex
    name = services.unique_name("dashin_t")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD {}").format(
                sql.Identifier(login), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(login)
            )
        )
    try:
        yield login, _as_login(services.with_database(admin_url, name), login, password)
    finally:
        services.drop_database(admin_url, name)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


@pytest.fixture
def managed_login(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    with _managed_login(pg_admin_url) as found:
        yield found


def _run_as_administrator(admin_url: str, error: str) -> None:
    """Run, as the superuser, the statements a migrate error told the administrator to run."""
    (statements,) = re.findall(r"have an administrator run (.*?;) then run", error)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for statement in statements.split("; "):
            conn.execute(statement.rstrip(";"))


def _assert_migrated_with_row_security(url: str) -> None:
    """The schema is complete and the login may act for a domain under the policies."""
    assert _drift(url) == []
    with psycopg.connect(url) as conn:
        forced = conn.execute(
            "SELECT relforcerowsecurity FROM pg_class WHERE oid = 'leads'::regclass"
        ).fetchone()
        conn.execute(f"SET LOCAL ROLE {row_security.APP_ROLE}")
        assert conn.execute("SELECT count(*) FROM leads").fetchone() == (0,)
    assert forced == (True,)


def test_migrate_as_a_login_that_may_not_create_roles_names_the_grant_then_succeeds(
    pg_admin_url: str, managed_login: tuple[str, str]
) -> None:
    """docs/operations.md (row-level security): on a managed PostgreSQL `dashin migrate` stops
    with what an administrator must run, not a traceback; after it, migrate goes through."""
    login, url = managed_login
    # Given the application roles exist on the server (an administrator, or another database
    # of this cluster, created them) but the login is not a member of them
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for role in (row_security.APP_ROLE, row_security.MAINTENANCE_ROLE):
            conn.execute(
                f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
                "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            )
    # When the login migrates its database
    first = _dashin_migrate(url)
    # Then it stops with one readable line naming the statement to run
    assert first.returncode == 1, first.stdout + first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    grant = f'GRANT dashin_app, dashin_maintenance TO "{login}";'
    assert f"error: {login} is not a member of dashin_app, dashin_maintenance" in first.stderr
    assert f"have an administrator run {grant} then run `dashin migrate` again" in first.stderr
    # and left nothing half done: the whole upgrade rolled back
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,)
    # When an administrator runs what it named, and the login migrates again
    _run_as_administrator(pg_admin_url, first.stderr)
    second = _dashin_migrate(url)
    # Then the schema is complete, row-level security included
    assert second.returncode == 0, second.stdout + second.stderr
    assert "database schema is up to date" in second.stdout + second.stderr
    _assert_migrated_with_row_security(url)


@pytest.mark.slow
def test_migrate_on_a_server_without_the_roles_names_them_then_succeeds(tmp_path: Path) -> None:
    """The first Dashin on a managed server: the roles are not there, and the login may not
    create them. (A cluster of its own: the test server's roles are shared by every database.)"""
    from runtime.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(tmp_path / "home")
    admin_url = pg.start().replace("postgresql+psycopg://", "postgresql://")
    try:
        with _managed_login(admin_url) as (login, url):
            with psycopg.connect(admin_url) as conn:
                found = conn.execute(
                    "SELECT count(*) FROM pg_roles "
                    "WHERE rolname IN ('dashin_app', 'dashin_maintenance')"
                ).fetchone()
            assert found == (0,)
            # When the login migrates its database
            first = _dashin_migrate(url)
            # Then it stops, naming the roles to create and the grant
            assert first.returncode == 1, first.stdout + first.stderr
            assert "Traceback" not in first.stdout + first.stderr
            assert (
                f"error: roles dashin_app, dashin_maintenance are missing and {login} may not "
                "create them: have an administrator run CREATE ROLE dashin_app NOLOGIN; "
                "CREATE ROLE dashin_maintenance NOLOGIN; "
                f'GRANT dashin_app, dashin_maintenance TO "{login}"; then run `dashin migrate` '
                "again (docs/operations.md, row-level security)"
            ) in first.stderr
            # When an administrator runs them, and the login migrates again
            _run_as_administrator(admin_url, first.stderr)
            second = _dashin_migrate(url)
            # Then it goes through
            assert second.returncode == 0, second.stdout + second.stderr
            _assert_migrated_with_row_security(url)
    finally:
        pg.stop()
