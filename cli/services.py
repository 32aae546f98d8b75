"""Embedded services for `dashin up`: start what is not configured, record it in `.dashin/env`."""

from __future__ import annotations

import os
from dataclasses import dataclass

from runtime.crypto import generate_key
from runtime.embedded import EmbeddedPostgres, EmbeddedRedis, read_env_file, write_env_file
from runtime.settings import dashin_home, env_file_path, reset_settings_cache


@dataclass
class StartedServices:
    database_url: str
    redis_url: str
    embedded_postgres: EmbeddedPostgres | None
    embedded_redis: EmbeddedRedis | None

    @property
    def embedded(self) -> bool:
        """Whether `stop` has anything to stop (else the services belong to someone else)."""
        return self.embedded_postgres is not None or self.embedded_redis is not None

    def stop(self) -> None:
        if self.embedded_redis is not None:
            self.embedded_redis.stop()
        if self.embedded_postgres is not None:
            self.embedded_postgres.stop()


def ensure_services() -> StartedServices:
    """Start embedded PostgreSQL / Redis for the variables that are unset; keep a secret key."""
    home = dashin_home()
    home.mkdir(parents=True, exist_ok=True)
    recorded = read_env_file(env_file_path())
    updates: dict[str, str] = {}
    pg: EmbeddedPostgres | None = None
    rd: EmbeddedRedis | None = None
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        pg = EmbeddedPostgres(home)
        database_url = pg.start()
        updates["DATABASE_URL"] = database_url
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        rd = EmbeddedRedis(home)
        redis_url = rd.start()
        updates["REDIS_URL"] = redis_url
    if not os.environ.get("DASHIN_SECRET_KEY") and "DASHIN_SECRET_KEY" not in recorded:
        updates["DASHIN_SECRET_KEY"] = generate_key()
    if updates:
        write_env_file(env_file_path(), updates)
    reset_settings_cache()
    return StartedServices(database_url, redis_url, pg, rd)


def stop_embedded() -> list[str]:
    home = dashin_home()
    stopped = []
    rd = EmbeddedRedis(home)
    if rd.is_running():
        rd.stop()
        stopped.append("redis")
    pg = EmbeddedPostgres(home)
    if pg.is_running():
        pg.stop()
        stopped.append("postgres")
    return stopped
