"""The runner in-process against real PostgreSQL: pages, counters, pause, cancel, fencing."""

from __future__ import annotations

import itertools
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connectors.errors import RateLimited
from connectors.providers.synthetic import SyntheticConnector
from models import (
    Job,
    JobLog,
    JobRecordError,
    Lead,
    LeadSource,
    Notification,
    job_states,
    row_security,
)
from models import leads_sink as sink
from models.sources import DataSource
from runtime.settings import reset_settings_cache
from tests.workers.conftest import World
from workers.runner import Runner


def _job(world: World, job_id: uuid.UUID) -> Job:
    with Session(world.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_job_runs_to_completed_with_balanced_counters(world: World, runner: Runner) -> None:
    job_id = world.queued_job(total=1000, page_size=100, bad_every=50)
    assert runner.run(job_id) == "completed"
    job = _job(world, job_id)
    assert job.status == "completed" and job.finished_at is not None
    assert (job.pages, job.fetched, job.inserted, job.rejected) == (10, 1000, 980, 20)
    assert job.checkpoint == {"next": 1000} and job.attempts == 0
    with Session(world.engine) as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 980
        assert session.scalar(select(func.count()).select_from(LeadSource)) == 980
        assert session.scalar(select(func.count()).select_from(JobRecordError)) == 20
        seqs = list(
            session.scalars(select(JobLog.seq).where(JobLog.job_id == job_id).order_by(JobLog.seq))
        )
        assert seqs == list(range(1, len(seqs) + 1))
        events = list(session.scalars(select(JobLog.event).where(JobLog.job_id == job_id)))
        assert "job.finish" in events
        pages = list(
            session.scalars(
                select(JobLog.fields).where(
                    JobLog.job_id == job_id, JobLog.event == "page.committed"
                )
            )
        )
        # every provider page lands in exactly one commit (small ones may share one)
        assert sum(p["pages"] for p in pages) == 10 and 1 <= len(pages) <= 10
        source = session.get(DataSource, world.source_id)
        assert source is not None
        assert (source.jobs_total, source.leads_total, source.jobs_failed) == (1, 980, 0)
        assert [source.last_warnings] == [job.warnings]
        # creator is also the only manager: one notification of each kind
        kinds = list(session.scalars(select(Notification.kind).order_by(Notification.kind)))
        assert kinds == ["job.completed", "job.warning"]
    assert [(w["code"], w["count"]) for w in job.warnings] == [("records_rejected", 20)]


def test_second_run_of_the_same_leads_inserts_nothing(world: World, runner: Runner) -> None:
    runner.run(world.queued_job(total=300))
    second = world.queued_job(total=300)
    runner.run(second)
    job = _job(world, second)
    assert (job.inserted, job.unchanged, job.fetched) == (0, 300, 300)


def test_every_page_transaction_acts_for_the_jobs_domain_under_row_level_security(
    world: World, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: the transaction that writes a page's leads, then its counters, checkpoint and
    log lines, runs as the application role with the job's domain set, so the policies stand
    behind every write and no other domain's rows are in reach."""
    monkeypatch.setenv("DASHIN_RLS", "on")
    reset_settings_cache()
    seen_by_sink: list[tuple[str, str]] = []
    seen_by_counters: list[tuple[str, object]] = []
    write_page = sink.write_page
    record_page = job_states.record_page

    def spy_sink(conn: Any, **values: Any) -> sink.SinkResult:
        # the raw connection the leads are written on, inside the page's transaction
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, current_setting('app.domain_id', true)")
            seen_by_sink.append(tuple(cur.fetchone()))
        return write_page(conn, **values)

    def spy_counters(session: Session, *args: Any, **kwargs: Any) -> str:
        seen_by_counters.append(row_security.current(session.connection()))
        return record_page(session, *args, **kwargs)

    monkeypatch.setattr(sink, "write_page", spy_sink)
    monkeypatch.setattr(job_states, "record_page", spy_counters)
    # Given a job of three provider pages
    job_id = world.queued_job(total=300, page_size=100)
    # When it runs to its end
    assert runner.run(job_id) == "completed"
    # Then it wrote every lead, and every page transaction acted for the job's domain only
    job = _job(world, job_id)
    assert (job.pages, job.inserted) == (3, 300)
    acting = (row_security.APP_ROLE, str(world.domain_id))
    assert 1 <= len(seen_by_sink) <= 3 and set(seen_by_sink) == {acting}
    assert len(seen_by_counters) == len(seen_by_sink) and set(seen_by_counters) == {acting}


#: a page every 0.2 s: ten pages outlast any first commit, even on a loaded machine (at 0.05 s
#: the prefetcher had all ten fetched before the first commit, and the merged second commit
#: swallowed the rest before a pause or cancel could land)
PACED_S = 0.2


def test_pause_stops_after_the_current_page_and_resume_finishes(
    world: World, runner: Runner
) -> None:
    job_id = world.queued_job(total=1000, page_size=100, delay_s=PACED_S)
    done = threading.Event()
    outcome: list[str] = []

    def run() -> None:
        outcome.append(runner.run(job_id))
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    # When the first page has committed, pause
    _wait_for(world, job_id, lambda j: j.pages >= 1)
    with Session(world.engine) as session, session.begin():
        assert job_states.pause(session, job_id).status == "pausing"
    assert done.wait(30)
    job = _job(world, job_id)
    assert outcome == ["paused"] and job.status == "paused"
    paused_pages = job.pages
    assert paused_pages < 10
    # Then resume: the job continues from its checkpoint and ends with every lead once
    with Session(world.engine) as session, session.begin():
        job_states.resume(session, job_id)
    assert runner.run(job_id) == "completed"
    job = _job(world, job_id)
    assert job.pages == 10 and job.inserted == 1000
    with Session(world.engine) as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 1000


def test_cancel_keeps_what_was_written(world: World, runner: Runner) -> None:
    job_id = world.queued_job(total=1000, page_size=100, delay_s=PACED_S)
    thread = threading.Thread(target=runner.run, args=(job_id,))
    thread.start()
    _wait_for(world, job_id, lambda j: j.pages >= 2)
    with Session(world.engine) as session, session.begin():
        assert job_states.cancel(session, job_id).status == "cancelling"
    thread.join(30)
    job = _job(world, job_id)
    assert job.status == "cancelled" and 2 <= job.pages < 10
    with Session(world.engine) as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == job.inserted


def test_a_fenced_out_runner_writes_nothing(world: World, runner: Runner) -> None:
    job_id = world.queued_job(total=1000, page_size=100, delay_s=PACED_S)
    thread = threading.Thread(target=runner.run, args=(job_id,))
    thread.start()
    _wait_for(world, job_id, lambda j: j.pages >= 1)
    # Another runner takes the job over (as the reaper would): lease + 1
    with Session(world.engine) as session, session.begin():
        session.execute(update(Job).where(Job.id == job_id).values(lease=Job.lease + 1))
        pages_at_takeover = session.scalar(select(Job.pages).where(Job.id == job_id))
    thread.join(30)
    job = _job(world, job_id)
    assert job.status == "running"  # untouched: the new owner decides
    assert job.pages == pages_at_takeover
    with Session(world.engine) as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == job.inserted


def test_duplicate_message_does_not_run_a_running_job(world: World, runner: Runner) -> None:
    job_id = world.queued_job(total=100)
    with Session(world.engine) as session, session.begin():
        job_states.acquire(session, job_id, 5)
    assert runner.run(job_id) == "not_acquired"


def test_poison_job_fails_after_max_attempts(world: World, runner: Runner) -> None:
    job_id = world.queued_job(total=100)
    with Session(world.engine) as session, session.begin():
        session.execute(
            update(Job).where(Job.id == job_id).values(attempts=runner.settings.max_attempts)
        )
    assert runner.run(job_id) == "not_acquired"
    job = _job(world, job_id)
    assert job.status == "failed" and job.error == "too many attempts"


def test_bad_params_fail_with_a_readable_error(world: World, runner: Runner) -> None:
    job_id = world.queued_job(total=-5)
    assert runner.run(job_id) == "failed"
    job = _job(world, job_id)
    assert job.error is not None and "total" in job.error and "bad_config" in job.error


def _wait_for(world: World, job_id: uuid.UUID, check: object, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check(_job(world, job_id)):  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


class _ThrottledConnector(SyntheticConnector):
    """Commits one page, then waits on a provider limit (as the HTTP layer does) and parks."""

    type = "synthetic"
    wait_s = 0.0

    def pages(self, config, params, checkpoint, ctx):  # type: ignore[no-untyped-def]
        if not checkpoint:
            yield from itertools.islice(super().pages(config, params, checkpoint, ctx), 1)
        ctx.wait(self.wait_s)
        raise RateLimited(3600)


def test_rate_limit_parks_the_job_until_resume_at(
    world: World, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.runner.get_connector_class", lambda _t: _ThrottledConnector)
    job_id = world.queued_job(total=300)
    assert runner.run(job_id) == "paused"
    job = _job(world, job_id)
    assert job.pause_reason == "rate_limited" and job.resume_at is not None
    assert job.pages == 1


def test_pause_during_a_throttle_wait_wins_over_parking(
    world: World, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    class LongWait(_ThrottledConnector):
        wait_s = 60.0

    monkeypatch.setattr("workers.runner.get_connector_class", lambda _t: LongWait)
    job_id = world.queued_job(total=300)
    thread = threading.Thread(target=runner.run, args=(job_id,))
    thread.start()
    _wait_for(world, job_id, lambda j: j.pages >= 1)
    with Session(world.engine) as session, session.begin():
        job_states.pause(session, job_id)
    thread.join(30)
    job = _job(world, job_id)
    assert (job.status, job.pause_reason, job.resume_at) == ("paused", "user", None)


def test_merged_pages_keep_the_last_checkpoint_and_every_record() -> None:
    from connectors.base import Page, Progress
    from records import LeadRecord, RecordError
    from workers.runner import merge_pages

    pages = [
        Page([LeadRecord(email="a@x.io")], {"next": 1}, [], Progress(1, 3), 2, None),
        Page([], {"next": 2}, [RecordError("bad", "bad row", record=2)], None, 1, {"s": 1}),
        Page([LeadRecord(email="c@x.io")], {"next": 3}, [], Progress(3, 3), 0, None),
    ]
    merged = merge_pages(pages)
    assert merged.checkpoint == {"next": 3}
    assert [r.email for r in merged.records] == ["a@x.io", "c@x.io"]
    assert [e.record for e in merged.errors] == [2]
    assert (merged.progress, merged.credits_used, merged.sync_state) == (
        Progress(3, 3),
        3,
        {"s": 1},
    )
