"""After the page clock fires, the abandoned fetching thread can neither write nor pile up
(issue 14, item 1; `workers.prefetch`).

The connector below commits one page, then blocks on an event it alone is told about (a
provider that never answers, a connector that ignores `should_stop`). The runner gives up on it
after `page_timeout_s` and fails the job; the test then releases the thread and checks what it
could still do: nothing reaches the job, its log or its data source.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.base import Page, RunContext
from connectors.providers.synthetic import SyntheticConfig, SyntheticConnector, SyntheticParams
from models import Job, JobLog, Lead
from runtime.settings import get_settings
from tests.workers.conftest import World
from tests.workers.test_faults import wait_until
from workers.prefetch import abandoned_fetches
from workers.runner import Runner


class Blocking:
    """What the stuck connector saw once it was let go (set by its thread)."""

    release = threading.Event()
    done = threading.Event()
    seen: dict[str, Any] = {}


class _StuckConnector(SyntheticConnector):
    type = "synthetic"

    def pages(
        self,
        config: SyntheticConfig,
        params: SyntheticParams,
        checkpoint: dict[str, Any] | None,
        ctx: RunContext,
    ) -> Iterator[Page]:
        pages = super().pages(config, params, checkpoint, ctx)
        yield from itertools.islice(pages, 1)
        Blocking.release.wait(30)  # stuck, deaf to should_stop
        try:
            Blocking.seen["should_stop"] = ctx.should_stop()
            ctx.log.info("late.line", message="written after the runner gave up")
            try:
                ctx.save_config({"seed": "late"})
                Blocking.seen["saved"] = True
            except RuntimeError as exc:
                Blocking.seen["saved"] = str(exc)
            yield from pages  # every page it still makes is dropped
        finally:
            Blocking.done.set()


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Blocking]]:
    Blocking.release, Blocking.done, Blocking.seen = threading.Event(), threading.Event(), {}
    monkeypatch.setattr("workers.runner.get_connector_class", lambda _t: _StuckConnector)
    yield Blocking
    Blocking.release.set()  # never leave a thread behind for the next test
    Blocking.done.wait(10)


@pytest.fixture
def runner(engine: Engine, settings_env: None, redis_url: str) -> Iterator[Runner]:
    client = redis.Redis.from_url(redis_url)
    settings = get_settings().model_copy(update={"page_timeout_s": 0.3})
    yield Runner(engine, settings, client, threading.Event())
    client.close()


def _job(world: World, job_id: uuid.UUID) -> Job:
    with Session(world.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_an_abandoned_fetch_writes_nothing_after_the_page_timeout(
    world: World, runner: Runner, stuck: type[Blocking]
) -> None:
    job_id = world.queued_job(total=500, page_size=100)
    # Given a job whose connector hangs after its first page: it fails on the page clock
    assert runner.run(job_id) == "failed"
    assert _job(world, job_id).error_code == "page_timeout"
    assert abandoned_fetches() == 1
    before = _job(world, job_id)
    # When the stuck thread wakes up and carries on
    stuck.release.set()
    assert stuck.done.wait(10)
    # Then it was told to stop, could not save, and nothing it did reached the database
    assert stuck.seen["should_stop"] is True
    assert "nothing more is saved" in str(stuck.seen["saved"])
    after = _job(world, job_id)
    assert (after.status, after.pages, after.fetched, after.checkpoint, after.log_seq) == (
        "failed",
        before.pages,
        before.fetched,
        before.checkpoint,
        before.log_seq,
    )
    assert (after.pages, after.fetched) == (1, 100)
    with Session(world.engine) as session:
        late = session.scalar(
            select(func.count()).select_from(JobLog).where(JobLog.event == "late.line")
        )
        leads = session.scalar(select(func.count()).select_from(Lead))
    assert (late, leads) == (0, 100)
    wait_until(lambda: abandoned_fetches() == 0, 10, "the abandoned thread to end")


def test_a_worker_with_too_many_abandoned_fetches_starts_no_job_until_they_end(
    world: World, runner: Runner, stuck: type[Blocking], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.runner.MAX_ABANDONED_FETCHES", 1)
    first = world.queued_job(total=500, page_size=100)
    assert runner.run(first) == "failed"
    # While the abandoned thread lives, the next job is held back (not acquired, no attempt)
    second = world.queued_job(total=100, page_size=100)
    assert runner.run(second) == "held"
    job = _job(world, second)
    assert (job.status, job.attempts, job.lease) == ("queued", 0, 0)
    # Once it has ended, the job runs
    stuck.release.set()
    wait_until(lambda: abandoned_fetches() == 0, 10, "the abandoned thread to end")
    assert runner.run(second) == "completed"
