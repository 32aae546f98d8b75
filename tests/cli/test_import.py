"""`dashin import-csv`: upload, job, progress until the end; campaign and source found or made."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import httpx
from typer.testing import CliRunner

from cli.main import app
from tests.cli.conftest import CliUser, LiveApi, Proc

SAMPLE = Path(str(resources.files("cli").joinpath("data", "leads_sample.csv")))


def test_import_csv_creates_campaign_and_source_then_reuses_them(
    cli_env: dict[str, str], live_api: LiveApi, worker: Proc, cli_user: CliUser
) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["import-csv", str(SAMPLE), "--campaign", "Spring outreach"])
    again = runner.invoke(app, ["import-csv", str(SAMPLE), "--campaign", "spring-outreach"])

    assert first.exit_code == 0, first.output
    assert "created campaign Spring outreach" in first.output
    assert "completed: 250 rows, 250 new" in first.output
    assert again.exit_code == 0, again.output
    assert "created campaign" not in again.output  # found by slug
    assert "0 new" in again.output and "250 unchanged" in again.output
    headers = {"Authorization": f"Bearer {cli_user.key}"}
    sources = httpx.get(f"{live_api.url}/api/v1/data-sources", headers=headers).json()["items"]
    assert [(s["type"], s["name"]) for s in sources] == [("csv", "CSV import")]
