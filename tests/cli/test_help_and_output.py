"""The `dashin` command as a newcomer meets it: help everywhere, `--version`, the same `--json` /
`--local` switches on every command that reads data, tables whole when piped, a psql URL."""

from __future__ import annotations

import io
import subprocess
import sys
from importlib.metadata import version
from typing import Any

import pytest
import typer
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from cli.db import libpq_url
from cli.imports import upload_rate
from cli.main import app
from cli.output import print_table
from runtime.errors import ConfigurationError

ROOT_COMMAND = typer.main.get_command(app)

# Every command that reads data, as `dashin <words>`
READERS = [("jobs", "list"), ("jobs", "show"), ("logs",), ("sources", "list")]


def walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """(name, command) of the command and all its subcommands (Typer's own click classes)."""
    found = [(" ".join(path) or "dashin", command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += walk(sub, (*path, name))
    return found


def find(words: tuple[str, ...]) -> Any:
    command = ROOT_COMMAND
    for word in words:
        command = command.commands[word]
    return command


def test_every_command_option_and_argument_has_help() -> None:
    missing = []
    commands = walk(ROOT_COMMAND)
    assert {"jobs list", "sources test", "logs", "psql", "services status"} <= dict(commands).keys()
    for name, command in commands:
        if not (command.help or command.short_help):
            missing.append(f"{name}: no description")
        for param in command.params:
            if param.name == "help":
                continue
            if not getattr(param, "help", None):
                missing.append(f"{name} {param.name}")
    assert missing == []


@pytest.mark.parametrize("words", READERS, ids=" ".join)
def test_every_reading_command_takes_json_and_local(words: tuple[str, ...]) -> None:
    options = {opt for param in find(words).params for opt in getattr(param, "opts", [])}
    assert {"--json", "--local"} <= options


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"dashin {version('dashin')}"


def test_a_piped_table_keeps_every_cell_whole() -> None:
    # Given a table wider than 80 columns and output that is not a terminal
    job_id = "0f9d2a1c-8d8e-4b59-9a2c-1f2e3d4c5b6a"
    table = Table("id", "status", "campaign", "error")
    table.add_row(job_id, "failed", "Spring outreach 2027 EMEA", "x" * 60)
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    assert console.width == 80
    print_table(table, console)
    # Then nothing is cut or wrapped, and the console's width is left as it was
    assert job_id in out.getvalue() and "x" * 60 in out.getvalue()
    assert "…" not in out.getvalue()
    assert len(out.getvalue().splitlines()) == 5
    assert console.width == 80


def test_a_piped_command_prints_whole_tables() -> None:
    # `dashin config | cat`: a real pipe, no COLUMNS, a value longer than a terminal line
    long_url = "http://api.internal.example.com:8000/" + "a" * 80
    env = {
        "PATH": "/usr/bin:/bin",
        "DASHIN_SECRET_KEY": "x" * 40,
        "DASHIN_API_URL": long_url,
        "HOME": "/nonexistent",
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert long_url in result.stdout  # whole, on one line: not cut with … nor wrapped


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://postgres@127.0.0.1:5433/dashin",
            "postgresql://postgres@127.0.0.1:5433/dashin",
        ),
        (
            "postgresql+psycopg://u:p%40ss@db.example:5432/app?sslmode=require",
            "postgresql://u:p%40ss@db.example:5432/app?sslmode=require",
        ),
        ("postgresql://postgres@127.0.0.1/test", "postgresql://postgres@127.0.0.1/test"),
    ],
)
def test_the_libpq_url_drops_the_driver_and_keeps_the_rest(url: str, expected: str) -> None:
    assert libpq_url(url) == expected


def test_a_non_postgresql_url_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        libpq_url("sqlite:///x.db")


def test_psql_opens_the_configured_database(db_url: str) -> None:
    # Given the configured URL in SQLAlchemy's form, as `.dashin/env` holds it
    sqlalchemy_url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": sqlalchemy_url, "HOME": "/nonexistent"}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "psql", "--", "-Atc", "SELECT 40 + 2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "42"), result.stderr


def test_the_upload_rate_is_bytes_over_elapsed_time() -> None:
    assert upload_rate(2_500_000, 1.0) == "2.5 MB/s"
    assert upload_rate(1000, 0.0) == "1.0 MB/s"  # a finished upload never divides by zero
