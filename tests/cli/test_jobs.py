"""`dashin jobs …` and `dashin sources …` against a live API, and `--local` against the database."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.main import app
from models.job_statuses import TERMINAL_STATUSES
from tests.cli.conftest import ROOT, CliUser, Proc, await_job_status

runner = CliRunner()


def dashin(*args: str) -> Any:
    """Run a command with `--json` and return its parsed output (asserting exit code 0)."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_lifecycle_through_the_api(cli_env: dict[str, str], synthetic_source: uuid.UUID) -> None:
    job = dashin("jobs", "create", "--source", str(synthetic_source), "--param", "total=40")
    assert job["status"] == "pending" and job["params"] == {"total": 40}

    # No worker serves the queue: the job stays queued, so every move is deterministic.
    assert dashin("jobs", "start", job["id"])["status"] == "queued"
    assert dashin("jobs", "pause", job["id"])["status"] == "paused"
    assert dashin("jobs", "resume", job["id"])["status"] == "queued"
    assert dashin("jobs", "cancel", job["id"])["status"] == "cancelled"
    assert dashin("jobs", "show", job["id"])["status"] == "cancelled"

    listed = dashin("jobs", "list", "--status", "cancelled")
    assert [j["id"] for j in listed] == [job["id"]]
    assert dashin("jobs", "list", "--status", "running") == []


def test_a_refused_move_exits_1_with_the_problem_readable(
    cli_env: dict[str, str], live_env: dict[str, str], synthetic_source: uuid.UUID
) -> None:
    job = dashin("jobs", "create", "--source", str(synthetic_source))
    dashin("jobs", "cancel", job["id"])
    # the real entry point (`main()` turns errors into a message and exit code 1)
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "jobs", "pause", job["id"]],
        env={**live_env, **cli_env, "COLUMNS": "200"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "409 Invalid transition" in result.stderr
    assert "(job status: cancelled)" in result.stderr


def test_bad_params_name_the_field(cli_env: dict[str, str], synthetic_source: uuid.UUID) -> None:
    result = runner.invoke(
        app, ["jobs", "create", "--source", str(synthetic_source), "--param", "total=-3"]
    )
    assert result.exit_code == 1
    assert "422" in str(result.exception) and "params.total" in str(result.exception)


def test_a_wrong_api_key_says_how_to_fix_it(
    cli_env: dict[str, str], monkeypatch: Any, synthetic_source: uuid.UUID
) -> None:
    from runtime.settings import reset_settings_cache

    monkeypatch.setenv("DASHIN_API_KEY", "dsk_not-a-real-key")
    reset_settings_cache()
    result = runner.invoke(app, ["jobs", "list"])
    assert result.exit_code == 1
    assert "401" in str(result.exception) and "DASHIN_API_KEY" in str(result.exception)


def test_human_output_lists_the_job(
    cli_env: dict[str, str], synthetic_source: uuid.UUID, monkeypatch: Any
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    job = dashin("jobs", "create", "--source", str(synthetic_source))
    listed = runner.invoke(app, ["jobs", "list"])
    shown = runner.invoke(app, ["jobs", "show", job["id"]])
    assert job["id"] in listed.stdout and "pending" in listed.stdout
    assert "synthetic" in shown.stdout and "counters" in shown.stdout


def test_local_mode_runs_a_job_without_the_api(
    settings_env: None, db_url: str, worker: Proc, synthetic_source: uuid.UUID, cli_user: CliUser
) -> None:
    # Given no API at all (DASHIN_API_URL points nowhere) and a worker
    created = dashin("jobs", "create", "--local", "--source", str(synthetic_source), "--start")
    assert created["status"] in ("queued", "running", "completed")
    assert created["domain_id"] == str(cli_user.domain_id)

    # When the job has ended, as the database reports it
    await_job_status(db_url, created["id"], set(TERMINAL_STATUSES))
    job = dashin("jobs", "show", "--local", created["id"])

    # Then it completed with every synthetic lead
    assert job["status"] == "completed"
    assert job["counters"]["inserted"] == 200
    listed = dashin("jobs", "list", "--local", "--source", str(synthetic_source))
    assert [j["id"] for j in listed] == [job["id"]]


def test_local_moves_follow_the_state_machine(
    settings_env: None, engine: Engine, synthetic_source: uuid.UUID
) -> None:
    job = dashin("jobs", "create", "--local", "--source", str(synthetic_source))
    assert dashin("jobs", "cancel", "--local", job["id"])["status"] == "cancelled"
    refused = runner.invoke(app, ["jobs", "start", "--local", job["id"]])
    assert refused.exit_code == 1
    assert "cannot start" in str(refused.exception)


def test_sources_list_and_test(cli_env: dict[str, str], synthetic_source: uuid.UUID) -> None:
    listed = dashin("sources", "list")
    assert [s["id"] for s in listed] == [str(synthetic_source)]
    check = dashin("sources", "test", str(synthetic_source))
    assert check["ok"] is True and len(check["sample"]) == 5
    human = runner.invoke(app, ["sources", "test", str(synthetic_source)])
    assert human.exit_code == 0 and "ok" in human.stdout
