"""Creating and reading jobs (moves live in `models.job_states`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from models.base import found
from models.jobs import COUNTERS, Job
from models.sources import DataSource
from records import RecordError
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
    return found(session.scalar(query), "job", job_id)


def counters(job: Job) -> dict[str, int]:
    return {name: int(getattr(job, name)) for name in COUNTERS}


@dataclass(frozen=True, slots=True)
class RunInputs:
    """What a runner reads before its first page: the source's stored config and state, and the
    job's campaign and records counted so far (row numbers continue after a resume)."""

    source_type: str
    source_config: dict[str, Any]
    credentials: bytes | None
    sync_state: dict[str, Any]
    campaign_id: uuid.UUID | None
    records_before: int


def run_inputs(session: Session, job_id: uuid.UUID) -> RunInputs:
    job = session.get_one(Job, job_id)
    source = session.get_one(DataSource, job.data_source_id)
    return RunInputs(
        source_type=source.type,
        source_config=dict(source.config),
        credentials=source.credentials,
        sync_state=dict(source.sync_state or {}),
        campaign_id=job.campaign_id,
        records_before=int(job.fetched),
    )


# An INSERT from arrays: PostgreSQL refuses COPY FROM into a table whose row-level security
# applies (issue 20).
_INSERT_ERRORS = """
INSERT INTO job_record_errors (job_id, record, line, field, code, message, raw)
SELECT %(job_id)s, s.record, s.line, s.field, s.code, s.message, s.raw
FROM unnest(
    %(record)s::bigint[], %(line)s::bigint[], %(field)s::text[], %(code)s::text[],
    %(message)s::text[], %(raw)s::text[]
) AS s(record, line, field, code, message, raw)
"""


def insert_record_errors(
    conn: psycopg.Connection[Any], job_id: uuid.UUID, errors: Iterable[RecordError]
) -> None:
    """A page's row errors in one statement, in the page's transaction: a CSV page carries
    dozens, and a statement per row costs more."""
    rows = list(errors)
    if not rows:
        return
    columns = ("record", "line", "field", "code", "message", "raw")
    params: dict[str, Any] = {c: [getattr(e, c) for e in rows] for c in columns}
    conn.execute(_INSERT_ERRORS, {"job_id": job_id, **params})
