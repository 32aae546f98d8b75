"""Fixtures for real services: a migrated template database cloned per test, Redis, settings.

Tests that start worker processes or use LISTEN/NOTIFY need committed data, so every test that
asks for `db_url` gets its own database cloned from the migrated template (fast: a file copy).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine

from tests import services

pytest_plugins = ["tests.emulators"]


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with services.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    import migrations

    name = services.unique_name("dashin_tpl")
    url = services.create_database(pg_admin_url, name)
    migrations.upgrade(url)
    yield name
    services.drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A libpq URL to a fresh, migrated database of this test's own."""
    with services.scratch_database(pg_admin_url, template_db) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from runtime.db import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    with services.redis_server() as url:
        yield url


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """A Redis database of this test's own (numbered by worker pid), flushed before and after."""
    base = (
        redis_server_url.rsplit("/", 1)[0] if redis_server_url.count("/") > 2 else redis_server_url
    )
    db = 1 + os.getpid() % 15
    url = f"{base}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def settings_env(
    monkeypatch: pytest.MonkeyPatch, db_url: str, redis_url: str, tmp_path: object
) -> Iterator[None]:
    """Point `runtime.settings` at this test's database and Redis."""
    from runtime.settings import reset_settings_cache

    monkeypatch.setenv("DASHIN_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DASHIN_SECRET_KEY", "test-secret-key-that-is-long-enough-123")
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.0/8,::1/128")
    reset_settings_cache()
    yield
    reset_settings_cache()
