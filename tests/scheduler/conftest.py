"""Scheduler test helpers: a tenant with a synthetic data source, schedule rows, a recording
enqueue, and a `Scheduler` wired to them with a deterministic jitter."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from models import DataSource, Domain, Job, Schedule
from runtime.db import session_scope
from scheduler.config import SchedulerConfig
from scheduler.loop import Scheduler

T0 = datetime(2030, 1, 7, 9, 0, 0, tzinfo=UTC)  # a Monday, well after any real `created_at`


@dataclass(frozen=True)
class Source:
    domain_id: uuid.UUID
    data_source_id: uuid.UUID


@dataclass
class RecordingEnqueue:
    """Stands in for `workers.enqueue.enqueue_job`: remembers (job_id, queue) in call order."""

    calls: list[tuple[uuid.UUID, str]] = field(default_factory=list)

    def __call__(self, job_id: uuid.UUID, queue: str) -> None:
        self.calls.append((job_id, queue))

    @property
    def job_ids(self) -> list[uuid.UUID]:
        return [job_id for job_id, _ in self.calls]


@pytest.fixture
def source(engine: Engine) -> Source:
    with session_scope(engine) as session:
        domain = Domain(domain_name=f"{uuid.uuid4().hex[:10]}.example")
        session.add(domain)
        session.flush()
        data_source = DataSource(domain_id=domain.id, type="synthetic", name="synthetic")
        session.add(data_source)
        session.flush()
        return Source(domain.id, data_source.id)


@pytest.fixture
def add_schedule(engine: Engine, source: Source) -> Callable[..., uuid.UUID]:
    def add(**values: Any) -> uuid.UUID:
        values.setdefault("created_at", T0)
        with session_scope(engine) as session:
            row = Schedule(
                domain_id=source.domain_id, data_source_id=source.data_source_id, **values
            )
            session.add(row)
            session.flush()
            return row.id

    return add


@pytest.fixture
def recorder() -> RecordingEnqueue:
    return RecordingEnqueue()


@pytest.fixture
def make_scheduler(engine: Engine, recorder: RecordingEnqueue) -> Callable[..., Scheduler]:
    def make(
        grace_s: float = 300.0, jitter_fraction: float = 0.5, queued_grace_s: float = 60.0
    ) -> Scheduler:
        scheduler = Scheduler(
            engine,
            SchedulerConfig(misfire_grace_s=grace_s),
            queued_grace_s=queued_grace_s,
            enqueue=recorder,
            jitter=lambda max_s: max_s * jitter_fraction,
        )
        scheduler.resync()
        return scheduler

    return make


def schedule_row(engine: Engine, schedule_id: uuid.UUID) -> Schedule:
    with session_scope(engine) as session:
        row = session.get(Schedule, schedule_id)
        assert row is not None
        session.expunge(row)
        return row


def schedule_jobs(engine: Engine, schedule_id: uuid.UUID) -> list[Job]:
    with session_scope(engine) as session:
        rows = list(
            session.scalars(
                select(Job).where(Job.schedule_id == schedule_id).order_by(Job.slot_time)
            )
        )
        session.expunge_all()
        return rows
