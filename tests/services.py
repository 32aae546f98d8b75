"""Where the test suite finds PostgreSQL and Redis.

`TEST_DATABASE_URL` / `TEST_REDIS_URL` when set (`.ci/run` sets them when the machine's services
answer), otherwise embedded servers started once per test run under `.dashin-test/`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def postgres_server() -> Iterator[str]:
    """A libpq URL to a server we may CREATE DATABASE on; an embedded one we start, we stop."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url.replace("postgresql+psycopg://", "postgresql://")
        return
    from runtime.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(ROOT / ".dashin-test")
    started = not pg.is_running()
    pg.start()
    try:
        yield pg.url().replace("postgresql+psycopg://", "postgresql://")
    finally:
        if started:
            pg.stop()


@contextmanager
def redis_server() -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    from runtime.embedded import EmbeddedRedis

    server = EmbeddedRedis(ROOT / ".dashin-test")
    started = not server.is_running()
    try:
        yield server.start()
    finally:
        if started:
            server.stop()


def with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(query)
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def scratch_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    name = unique_name("dashin_t")
    url = create_database(admin_url, name, template)
    try:
        yield url
    finally:
        drop_database(admin_url, name)
