"""Fixtures for real services: a migrated template database cloned per test, Redis, settings.

Tests that start worker processes or use LISTEN/NOTIFY need committed data, so every test that
asks for `db_url` gets its own database cloned from the migrated template (fast: a file copy).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine

from tests import services

pytest_plugins = ["tests.emulators"]

# the `synthetic` connector (and its crash_on_page) exists only where this is on; processes the
# tests start inherit it
os.environ.setdefault("DASHIN_TEST_CONNECTORS", "1")


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


REDIS_CLAIM_TTL_S = 1800


@pytest.fixture(scope="session")
def redis_base_url(redis_server_url: str) -> Iterator[str]:
    """The server URL with a database number this test run has claimed for itself.

    Two test runs on one machine (a developer's and CI's, say) share the Redis server; each
    claims a free database 1-15 with `SET NX` in database 0 so one run's FLUSHDB never wipes
    the other's queues. A run killed without releasing its claim frees it after the TTL.
    """
    base = (
        redis_server_url.rsplit("/", 1)[0] if redis_server_url.count("/") > 2 else redis_server_url
    )
    token = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex}"
    admin = redis.Redis.from_url(f"{base}/0")
    claimed = next(
        (
            db
            for db in range(1, 16)
            if admin.set(f"dashin-test:db:{db}", token, nx=True, ex=REDIS_CLAIM_TTL_S)
        ),
        None,
    )
    if claimed is None:
        admin.close()
        pytest.exit("all 15 Redis test databases are claimed by other test runs", returncode=3)
    try:
        yield f"{base}/{claimed}"
    finally:
        if admin.get(f"dashin-test:db:{claimed}") == token.encode():
            admin.delete(f"dashin-test:db:{claimed}")
        admin.close()


@pytest.fixture
def redis_url(redis_base_url: str) -> Iterator[str]:
    """A Redis database of this test run's own, flushed before and after each test."""
    url = redis_base_url
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
    monkeypatch.setenv("DASHIN_ENV", "development")  # like `dashin up`; production is the default
    reset_settings_cache()
    yield
    reset_settings_cache()
