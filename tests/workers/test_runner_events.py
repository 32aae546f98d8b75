"""A job's committed page is one live event (issue 18, item 4): the NOTIFY rate follows pages,
not leads. Counted on a LISTEN connection of the test's own; a sentinel NOTIFY sent after the run
is the barrier (notifications arrive in commit order), so nothing is waited for by time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models.domain_events import DomainEvent
from models.jobs import JobLog
from tests.workers.conftest import World
from workers.runner import Runner

SENTINEL = "sentinel"


@pytest.fixture
def listening(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("LISTEN domain_events")
        yield conn


def _notified(conn: psycopg.Connection[tuple[object, ...]], world: World) -> list[str]:
    """Every `domain_events` payload up to the sentinel sent now."""
    with Session(world.engine) as session, session.begin():
        session.execute(text("SELECT pg_notify('domain_events', :p)"), {"p": SENTINEL})
    payloads: list[str] = []
    for notify in conn.notifies(timeout=30):
        if notify.payload == SENTINEL:
            return payloads
        payloads.append(notify.payload)
    raise AssertionError(f"no sentinel; got {payloads}")


def test_a_committed_page_of_many_leads_is_one_event(
    world: World, runner: Runner, listening: psycopg.Connection[tuple[object, ...]]
) -> None:
    job_id = world.queued_job(total=300, page_size=100)
    assert runner.run(job_id) == "completed"
    payloads = _notified(listening, world)
    with Session(world.engine) as session:
        commits: list[dict[str, Any]] = list(
            session.scalars(
                select(JobLog.fields).where(
                    JobLog.job_id == job_id, JobLog.event == "page.committed"
                )
            )
        )
        events = session.scalars(
            select(DomainEvent)
            .where(DomainEvent.domain_id == world.domain_id)
            .order_by(DomainEvent.seq)
        ).all()
    # one NOTIFY and one event per committed page (3 provider pages, maybe fewer commits) ...
    assert 1 <= len(commits) <= 3
    assert len(payloads) == len(events) == len(commits)
    assert payloads == [f"{world.domain_id}:{e.seq}" for e in events]
    # ... naming the page's leads by id (capped) with its counts, and no personal data
    assert {e.kind for e in events} == {"lead.batch"}
    assert [e.data["inserted"] for e in events] == [c["inserted"] for c in commits]
    assert sum(e.data["count"] for e in events) == 300
    assert all(len(e.data["ids"]) == min(e.data["count"], 100) for e in events)
    assert all(e.data["truncated"] == (e.data["count"] > 100) for e in events)
    assert all(e.data["job_id"] == str(job_id) for e in events)
    assert all("@" not in str(e.data) for e in events)


def test_a_rerun_that_changes_nothing_publishes_nothing(
    world: World, runner: Runner, listening: psycopg.Connection[tuple[object, ...]]
) -> None:
    runner.run(world.queued_job(total=200, page_size=100))
    _notified(listening, world)
    assert runner.run(world.queued_job(total=200, page_size=100)) == "completed"
    assert _notified(listening, world) == []
