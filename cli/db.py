"""`dashin psql` and `dashin db-url`: the configured database, for psql and other libpq tools.

`DATABASE_URL` (or `.dashin/env`, where `dashin up` records the embedded one) names a SQLAlchemy
driver (`postgresql+psycopg://`), which psql rejects. `libpq_url` drops the driver part so
`psql`, `pg_dump` and friends take the same URL.
"""

from __future__ import annotations

import os
import shutil
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from runtime.errors import ConfigurationError


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://u:p@h:5432/db?x=y` → `postgresql://u:p@h:5432/db?x=y`."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigurationError(f"DATABASE_URL is not a PostgreSQL URL ({parsed.drivername})")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _configured_url() -> str:
    from runtime.settings import get_settings

    return libpq_url(get_settings().require_database_url())


def db_url_command(
    libpq: Annotated[
        bool, typer.Option("--libpq", help="without the driver part, as psql and pg_dump want it")
    ] = False,
) -> None:
    """Print the database URL the commands use (it may hold a password: it is yours)."""
    from runtime.settings import get_settings

    url = get_settings().require_database_url()
    typer.echo(libpq_url(url) if libpq else url)


def psql_command(
    args: Annotated[
        list[str] | None, typer.Argument(help="passed to psql, e.g. -c 'SELECT 1' (after --)")
    ] = None,
) -> None:
    """Open the configured database with psql: `dashin psql -- -c 'SELECT count(*) FROM jobs'`."""
    psql = shutil.which("psql")
    if psql is None:
        raise ConfigurationError(
            "psql is not installed (Debian/Ubuntu: apt-get install postgresql-client)"
        )
    os.execv(psql, [psql, _configured_url(), *(args or [])])
