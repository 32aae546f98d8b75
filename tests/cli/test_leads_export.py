"""`dashin leads export` against a live API: CSV and JSON lines, to a file or stdout, filtered."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sqlalchemy import Engine, text
from typer.testing import CliRunner

from cli.main import app
from tests.cli.conftest import CliUser

runner = CliRunner()


def test_export_writes_the_domains_leads_as_csv_or_json_lines(
    cli_env: dict[str, str], cli_user: CliUser, engine: Engine, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO leads (domain_id, email, first_name, priority) "
                "SELECT :d, 'e' || g || '@x.example', '=cmd' || g, "
                "CASE WHEN g <= 3 THEN 'high' ELSE 'low' END FROM generate_series(1, 10) g"
            ),
            {"d": cli_user.domain_id},
        )
    out = tmp_path / "leads.jsonl"
    result = runner.invoke(
        app, ["leads", "export", "--format", "jsonl", "-o", str(out), "--priority", "high"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["email"] for r in rows) == ["e1@x.example", "e2@x.example", "e3@x.example"]
    assert {r["first_name"][:4] for r in rows} == {"=cmd"}  # JSON keeps values as stored

    result = runner.invoke(app, ["leads", "export"])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(table) == 10 and all(r["first_name"].startswith("'=cmd") for r in table)
