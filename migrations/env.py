"""Alembic runtime: online migrations only (we always have a database to talk to)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import models

config = context.config
target_metadata = models.Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set (migrations.alembic_config does it)"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            compare_server_default=False,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
