"""`--local` on the reading commands besides `jobs`: `logs` and `sources list` read the database."""

from __future__ import annotations

import json
import uuid

from typer.testing import CliRunner

from cli.main import app
from tests.cli.conftest import CliUser

runner = CliRunner()


def _cancelled_job(source: uuid.UUID) -> str:
    created = runner.invoke(app, ["jobs", "create", "--local", "--source", str(source), "--json"])
    job_id = str(json.loads(created.stdout)["id"])
    assert runner.invoke(app, ["jobs", "cancel", "--local", job_id]).exit_code == 0
    return job_id


def test_logs_local_prints_the_lines_and_follows_to_the_outcome(
    settings_env: None, synthetic_source: uuid.UUID
) -> None:
    # Given a job that was cancelled (no API anywhere: DASHIN_API_URL points nowhere)
    job_id = _cancelled_job(synthetic_source)
    # When its log is read from the database, as the newest job
    result = runner.invoke(app, ["logs", "latest", "--local", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    # Then the lines are the API's shape, in order, ending with the cancel
    assert {line["job_id"] for line in lines} == {job_id}
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    assert "job.cancel" in [line["event"] for line in lines]
    # and following it ends at once with the cancelled exit code
    followed = runner.invoke(app, ["logs", job_id, "--local", "--follow", "--json"])
    assert followed.exit_code == 3
    assert followed.stdout == result.stdout


def test_logs_local_of_an_unknown_job_fails(settings_env: None) -> None:
    result = runner.invoke(app, ["logs", str(uuid.uuid4()), "--local"])
    assert result.exit_code == 1
    assert "not found" in str(result.exception)


def test_sources_list_local_reads_every_domain(
    settings_env: None, synthetic_source: uuid.UUID, cli_user: CliUser
) -> None:
    result = runner.invoke(app, ["sources", "list", "--local", "--json"])
    assert result.exit_code == 0, result.output
    sources = {s["id"]: s for s in json.loads(result.stdout)}
    mine = sources[str(synthetic_source)]
    assert mine["domain_id"] == str(cli_user.domain_id)
    assert mine["type"] == "synthetic" and "metrics" in mine
