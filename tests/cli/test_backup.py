"""`dashin backup` / `dashin restore`: backup → wipe → restore gives the same rows and leads."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.backup import Target, row_counts
from cli.main import app
from runtime.settings import get_settings
from tests.factories import make_domain, make_job, make_source, make_user
from workers.runner import Runner

LEADS = "SELECT email, first_name, last_name, company_name FROM leads ORDER BY email"


def _snapshot(db_url: str) -> tuple[dict[str, int], list[tuple[object, ...]]]:
    with psycopg.connect(db_url) as conn:
        return row_counts(conn), conn.execute(LEADS).fetchall()


def test_backup_wipe_restore_gives_back_the_same_rows_and_leads(
    engine: Engine, db_url: str, redis_url: str, settings_env: None, tmp_path: Path
) -> None:
    # Given a database with a finished job's leads, logs, row errors and an upload-free source
    domain = make_domain(engine)
    user = make_user(engine, domain)
    source = make_source(engine, domain, "synthetic", {"total": 300, "page_size": 50})
    job = make_job(engine, domain, source, {"bad_every": 11}, user)
    from sqlalchemy.orm import Session

    from models import job_states

    with Session(engine) as session, session.begin():
        job_states.start(session, job)
    client = redis.Redis.from_url(redis_url)
    assert Runner(engine, get_settings(), client, threading.Event()).run(job) == "completed"
    client.close()
    counts, leads = _snapshot(db_url)
    assert counts["leads"] == 273 and counts["job_logs"] > 0

    # When it is backed up (verified), wiped, and restored
    archive = tmp_path / "dashin.dump"
    runner = CliRunner()
    backed_up = runner.invoke(app, ["backup", str(archive), "--verify"])
    assert backed_up.exit_code == 0, backed_up.output
    assert "verified" in backed_up.output
    engine.dispose()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    assert _snapshot_tables(db_url) == 0
    restored = runner.invoke(app, ["restore", str(archive), "--yes"])

    # Then every table has its rows back and the leads are the very same
    assert restored.exit_code == 0, restored.output
    assert _snapshot(db_url) == (counts, leads)


def _snapshot_tables(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return len(row_counts(conn))


def test_verify_fails_when_a_table_restores_with_other_counts(
    tmp_path: Path, settings_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import backup

    def lossy(target: Target, file: Path) -> tuple[dict[str, int], dict[str, int]]:
        return {"leads": 10, "jobs": 1}, {"leads": 9, "jobs": 1}

    monkeypatch.setattr(backup, "backup_verified", lossy)
    result = CliRunner().invoke(app, ["backup", str(tmp_path / "x.dump"), "--verify"])
    assert result.exit_code == 1
    assert "1 table(s) differ" in result.output


def test_target_keeps_the_password_out_of_the_url() -> None:
    target = Target.parse("postgresql+psycopg://app:s3cret@db.example:5432/dashin")
    assert target.url == "postgresql://app@db.example:5432/dashin"
    assert target.password == "s3cret"
    assert target.env()["PGPASSWORD"] == "s3cret"
    assert target.with_database("postgres").database == "postgres"
