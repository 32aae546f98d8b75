"""The migration history: up from empty, down to base, up again, and no drift from the models."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import migrations
import models
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
