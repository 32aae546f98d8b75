"""Creating and reading jobs (moves live in `models.job_states`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from models.jobs import COUNTERS, Job
from models.sources import DataSource
from runtime.errors import NotFound


def create_job(
    session: Session,
    *,
    domain_id: uuid.UUID,
    data_source_id: uuid.UUID,
    campaign_id: uuid.UUID | None = None,
    params: dict[str, Any] | None = None,
    created_by: uuid.UUID | None = None,
    schedule_id: uuid.UUID | None = None,
    slot_time: datetime | None = None,
) -> Job | None:
    """Insert a pending job. With a schedule slot, returns None if that slot already has one."""
    source_type = session.scalar(
        select(DataSource.type).where(
            DataSource.id == data_source_id, DataSource.domain_id == domain_id
        )
    )
    if source_type is None:
        raise NotFound(f"data source {data_source_id} not found")
    values = {
        "domain_id": domain_id,
        "data_source_id": data_source_id,
        "campaign_id": campaign_id,
        "params": params or {},
        "created_by": created_by,
        "schedule_id": schedule_id,
        "slot_time": slot_time,
        "queue": source_type,
    }
    stmt = pg_insert(Job).values(**values)
    if schedule_id is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["schedule_id", "slot_time"])
    job_id = session.execute(stmt.returning(Job.id)).scalar_one_or_none()
    if job_id is None:
        return None
    return session.get(Job, job_id)


def get_job(session: Session, job_id: uuid.UUID, domain_id: uuid.UUID | None = None) -> Job:
    query = select(Job).where(Job.id == job_id)
    if domain_id is not None:
        query = query.where(Job.domain_id == domain_id)
    job = session.scalar(query)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def counters(job: Job) -> dict[str, int]:
    return {name: int(getattr(job, name)) for name in COUNTERS}
