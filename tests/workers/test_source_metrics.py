"""A data source's metrics equal the sums over its jobs, whatever interrupts them (property test).

Hypothesis draws, for a few jobs of one source, the commits after which something happens to the
job: a user pause (then resume), a rate-limit park (then resume), a worker crash (then the
reaper), a reaper re-queue while the old runner still works (it is fenced out), a provider
failure (then `start`, or left failed), a cancel. The runner runs in this process against real
PostgreSQL; after every interruption and at the end, `leads_total`, `jobs_total` and
`jobs_failed` must equal the sums over the source's jobs.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.errors import RateLimited, TransientError
from models import DataSource, Job, job_states
from models.job_outcome import ALL_RECORDS_REJECTED as ALL_REJECTED
from models.job_statuses import TERMINAL_STATUSES
from runtime.settings import get_settings
from tests.factories import make_domain, make_job, make_source, make_user
from workers.runner import Runner

PAGES = 6
ACTIONS = ("pause", "park", "crash", "requeue", "fail", "fail_final", "cancel")


class Crash(BaseException):
    """The worker process dies right after a commit: nothing below the runner runs any more."""


class ScriptedRunner(Runner):
    """Does `script[n]` right after the job's n-th committed transaction (across its runs)."""

    def __init__(self, *args: Any, script: dict[int, str]) -> None:
        super().__init__(*args)
        self.script = dict(script)
        self.commits = 0
        self.final = False

    def _commit_page(self, moved, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        result = super()._commit_page(moved, *args, **kwargs)
        if result[0] is None:  # fenced out: wrote nothing
            return result
        self.commits += 1
        action = self.script.pop(self.commits, None)
        if action in ("pause", "cancel"):
            with Session(self.engine) as session, session.begin():
                getattr(job_states, action)(session, moved.id)
        elif action == "requeue":  # the reaper takes the job over from a runner it thinks dead
            with Session(self.engine) as session, session.begin():
                job_states.reap_stale(session, 0.0)
        elif action == "park":
            raise RateLimited(3600)
        elif action in ("fail", "fail_final"):
            self.final = action == "fail_final"
            raise TransientError("provider answered 503 too often")
        elif action == "crash":
            raise Crash
        return result


def assert_metrics_add_up(engine: Engine, source_id: uuid.UUID) -> None:
    with Session(engine) as session:
        source = session.get(DataSource, source_id)
        assert source is not None
        inserted, ended, failed = session.execute(
            select(
                func.coalesce(func.sum(Job.inserted), 0),
                func.count().filter(Job.status.in_(TERMINAL_STATUSES)),
                func.count().filter(Job.status == "failed"),
            ).where(Job.data_source_id == source_id)
        ).one()
    assert (source.leads_total, source.jobs_total, source.jobs_failed) == (inserted, ended, failed)


def drive(runner: ScriptedRunner, engine: Engine, source_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    """Run the job to a terminal state, doing what an operator and the reaper would."""
    for _ in range(4 * len(ACTIONS) + 4):
        with contextlib.suppress(Crash):
            runner.run(job_id)
        assert_metrics_add_up(engine, source_id)
        with Session(engine, expire_on_commit=False) as session, session.begin():
            job = session.get(Job, job_id)
            assert job is not None
            if job.status in ("completed", "cancelled") or (
                job.status == "failed" and (runner.final or job.error_code == ALL_REJECTED)
            ):
                return job
            if job.status == "paused":
                job_states.resume(session, job_id)
            elif job.status == "failed":
                job_states.start(session, job_id)
            elif job.status in ("running", "pausing", "cancelling"):  # crashed: the reaper
                assert job_states.reap_stale(session, 0.0)
    raise AssertionError("the job did not end")


scripts = st.dictionaries(st.integers(1, PAGES), st.sampled_from(ACTIONS), max_size=3)


@pytest.fixture
def page_per_commit(settings_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """One provider page per commit, so every commit number a script names exists."""
    monkeypatch.setattr("workers.runner.BATCH_RECORDS", 1)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(jobs=st.lists(st.tuples(scripts, st.integers(0, 7)), min_size=1, max_size=3))
def test_source_metrics_equal_the_sums_over_its_jobs(
    engine: Engine, redis_url: str, page_per_commit: None, jobs: list[tuple[dict[int, str], int]]
) -> None:
    domain = make_domain(engine)
    user = make_user(engine, domain)
    # Given one source whose jobs overlap (a later job finds some leads already there)
    source_id = make_source(engine, domain, "synthetic", {"total": 20 * PAGES, "page_size": 20})
    client = redis.Redis.from_url(redis_url)
    try:
        for n, (script, bad_every) in enumerate(jobs):
            params = {"total": 20 * PAGES - 10 * n, "bad_every": bad_every}
            job_id = make_job(engine, domain, source_id, params, user)
            with Session(engine) as session, session.begin():
                job_states.start(session, job_id)
            runner = ScriptedRunner(
                engine, get_settings(), client, threading.Event(), script=script
            )
            # When it runs through the scripted interruptions to its end
            job = drive(runner, engine, source_id, job_id)
            # Then the job's own counters are whole, and the source's metrics add up
            if job.status == "completed" or job.error_code == ALL_REJECTED:
                assert job.fetched == params["total"]
            assert_metrics_add_up(engine, source_id)
    finally:
        client.close()
