"""`dashin purge`: `--dry-run` counts what each domain's retention would remove; a real run
removes it."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli.main import app
from tests.factories import make_domain, make_job, make_source, make_user


def test_dry_run_counts_and_the_real_run_removes(engine: Engine, settings_env: None) -> None:
    domain = make_domain(engine, "purge-cli.example")
    job = make_job(engine, domain, make_source(engine, domain), {}, make_user(engine, domain))
    with Session(engine) as session, session.begin():
        session.execute(
            text(
                "INSERT INTO job_logs (job_id, seq, ts, level, event) SELECT :j, g, "
                "now() - interval '100 days', 'info', 'old' FROM generate_series(1, 12) g"
            ),
            {"j": job},
        )
        session.execute(
            text("UPDATE jobs SET created_at = now() - interval '100 days' WHERE id = :j"),
            {"j": job},
        )

    dry = CliRunner().invoke(app, ["purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "purge-cli.example: job_logs would remove 12 rows" in dry.output

    real = CliRunner().invoke(app, ["purge"])
    assert real.exit_code == 0, real.output
    assert "purge-cli.example: job_logs removed 12 rows" in real.output
    with Session(engine) as session:
        assert session.scalar(text("SELECT count(*) FROM job_logs WHERE event = 'old'")) == 0
