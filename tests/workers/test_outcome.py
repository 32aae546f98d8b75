"""No quiet loss: CSV jobs whose rows are rejected fail or carry warnings; metrics add up.

The runner runs in this process against real PostgreSQL, over the real CSV connector reading an
upload stored in the database, as a worker would.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.providers.synthetic import SyntheticConnector
from models import DataSource, Job, Notification, job_states
from tests.factories import make_domain, make_job, make_source, make_upload, make_user
from workers.runner import Runner


def csv_rows(good: int, bad: int) -> str:
    """`good` rows with an email, then `bad` rows with neither an email nor a LinkedIn URL."""
    lines = ["First Name,Last Name,Email,Company"]
    lines += [f"Ana{i},Silva,ana{i}@acme.example,Acme" for i in range(good)]
    lines += [f"Bo{i},Lee,,Initech" for i in range(bad)]
    return "\n".join(lines) + "\n"


class CsvWorld:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.domain = make_domain(engine)
        self.user = make_user(engine, self.domain)
        self.source = make_source(engine, self.domain, "csv", {})

    def queued_job(self, text: str, **params: Any) -> uuid.UUID:
        file_id = make_upload(self.engine, self.domain, self.source, text)
        job_id = make_job(self.engine, self.domain, self.source, {"file_id": file_id, **params})
        with Session(self.engine) as session, session.begin():
            job_states.start(session, job_id)
        return job_id

    def job(self, job_id: uuid.UUID) -> Job:
        with Session(self.engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job

    def source_row(self) -> DataSource:
        with Session(self.engine) as session:
            source = session.get(DataSource, self.source)
            assert source is not None
            return source

    def notifications(self) -> list[tuple[str, dict[str, Any]]]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(Notification.kind, Notification.payload).order_by(Notification.kind)
            )
            return [(str(row.kind), dict(row.payload)) for row in rows]


def test_a_csv_whose_every_row_is_invalid_fails_all_records_rejected(
    engine: Engine, runner: Runner, settings_env: None
) -> None:
    # Given a CSV of 30 rows, none with an email or a LinkedIn URL
    world = CsvWorld(engine)
    job_id = world.queued_job(csv_rows(good=0, bad=30), page_size=10)
    # When the job runs to its end
    assert runner.run(job_id) == "failed"
    # Then it failed with the code, the commonest reason and a sample in its message
    job = world.job(job_id)
    assert (job.status, job.error_code) == ("failed", "all_records_rejected")
    assert (job.fetched, job.rejected, job.inserted) == (30, 30, 0)
    assert job.error is not None
    assert job.error.startswith("all_records_rejected: all 30 fetched records were rejected")
    assert "commonest reason: " in job.error and "(30), e.g. record 1 (line 2)" in job.error
    assert job.warnings == []
    source = world.source_row()
    assert (source.jobs_total, source.jobs_failed, source.leads_total) == (1, 1, 0)
    assert source.last_error == job.error
    kinds = world.notifications()
    assert [k for k, _ in kinds] == ["job.failed"]
    assert kinds[0][1]["error_code"] == "all_records_rejected"


def test_a_csv_with_some_bad_rows_completes_with_a_records_rejected_warning(
    engine: Engine, runner: Runner, settings_env: None
) -> None:
    # Given a CSV of 40 good rows and 7 without any identity
    world = CsvWorld(engine)
    job_id = world.queued_job(csv_rows(good=40, bad=7), page_size=10)
    # When it runs
    assert runner.run(job_id) == "completed"
    # Then it completed, warning about the 7 rejected rows, and told its people
    job = world.job(job_id)
    assert (job.status, job.error, job.error_code) == ("completed", None, None)
    assert (job.inserted, job.rejected) == (40, 7)
    [warning] = job.warnings
    assert (warning["code"], warning["count"]) == ("records_rejected", 7)
    assert warning["message"].startswith("7 of 47 fetched records were rejected; commonest")
    assert f"GET /jobs/{job_id}/errors" in warning["message"]
    source = world.source_row()
    assert source.last_warnings == job.warnings
    assert (source.jobs_total, source.jobs_failed, source.leads_total) == (1, 0, 40)
    notes = dict(world.notifications())
    assert set(notes) == {"job.completed", "job.warning"}
    assert notes["job.warning"]["warnings"] == job.warnings
    # And a clean run afterwards clears the source's warnings
    clean = world.queued_job(csv_rows(good=5, bad=0))
    assert runner.run(clean) == "completed"
    assert world.job(clean).warnings == [] and world.source_row().last_warnings == []


class PausingRunner(Runner):
    """Asks for a pause right after the `pause_after`-th commit, as a user between two pages."""

    pause_after = 1
    commits = 0

    def _commit_page(self, moved, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        result = super()._commit_page(moved, *args, **kwargs)
        self.commits += 1
        if self.commits == self.pause_after:
            with Session(self.engine) as session, session.begin():
                job_states.pause(session, moved.id)
        return result


def test_a_csv_job_paused_and_resumed_counts_every_lead_on_its_source(
    engine: Engine, runner: Runner, settings_env: None
) -> None:
    # Given a CSV of 6,000 new leads read 2,000 rows a page (one page per commit), paused after
    # its first commit
    world = CsvWorld(engine)
    job_id = world.queued_job(csv_rows(good=6000, bad=0), page_size=2000)
    pausing = PausingRunner(runner.engine, runner.settings, runner.redis, runner.shutdown)
    assert pausing.run(job_id) == "paused"
    paused = world.job(job_id)
    assert 0 < paused.inserted < 6000
    assert world.source_row().leads_total == paused.inserted  # counted with each page
    # When it is resumed and runs to its end
    with Session(engine) as session, session.begin():
        job_states.resume(session, job_id)
    assert runner.run(job_id) == "completed"
    # Then the source counts every lead the job wrote, before and after the pause
    job = world.job(job_id)
    assert job.inserted == 6000
    source = world.source_row()
    assert (source.leads_total, source.jobs_total, source.jobs_failed) == (6000, 1, 0)


class _MissingConnector(SyntheticConnector):
    """A capped search: its pages report 25 matches out of reach (as the partition walk does)."""

    type = "synthetic"

    def pages(self, config, params, checkpoint, ctx):  # type: ignore[no-untyped-def]
        for page in super().pages(config, params, checkpoint, ctx):
            assert page.progress is not None
            yield replace(page, progress=replace(page.progress, missed=25))


def test_matches_out_of_reach_complete_the_job_with_a_matches_missed_warning(
    engine: Engine, runner: Runner, settings_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.runner.get_connector_class", lambda _t: _MissingConnector)
    domain = make_domain(engine)
    user = make_user(engine, domain)
    source = make_source(engine, domain, "synthetic", {"total": 200, "page_size": 50})
    job_id = make_job(engine, domain, source, {}, user)
    with Session(engine) as session, session.begin():
        job_states.start(session, job_id)
    assert runner.run(job_id) == "completed"
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
    assert job.progress_missed == 25
    assert [(w["code"], w["count"]) for w in job.warnings] == [("matches_missed", 25)]
    assert "could not be reached through partitioning" in job.warnings[0]["message"]
