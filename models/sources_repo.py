"""Data-source queries, always scoped to one domain.

Credentials arrive here already encrypted (a Fernet token): this module never sees a clear secret,
so nothing it logs or returns can leak one. A data source with live jobs cannot be deleted, since
deleting it would cascade into a job a worker is running right now.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.orm import Session

from models.base import found
from models.job_statuses import LIVE_STATUSES
from models.jobs import Job
from models.sources import DataSource
from runtime.errors import Conflict


def create_source(
    session: Session,
    *,
    domain_id: uuid.UUID,
    type_: str,
    name: str,
    config: dict[str, Any],
    credentials: bytes | None,
    created_by: uuid.UUID | None,
) -> DataSource:
    source_id = session.execute(
        insert(DataSource)
        .values(
            domain_id=domain_id,
            type=type_,
            name=name,
            config=config,
            credentials=credentials,
            created_by=created_by,
        )
        .returning(DataSource.id)
    ).scalar_one()
    return get_source(session, source_id, domain_id)


def get_source(session: Session, source_id: uuid.UUID, domain_id: uuid.UUID) -> DataSource:
    """The source if it belongs to `domain_id`; another domain's source is simply not found."""
    return found(
        session.scalar(
            select(DataSource).where(DataSource.id == source_id, DataSource.domain_id == domain_id)
        ),
        "data source",
        source_id,
    )


def lock_source(session: Session, source_id: uuid.UUID) -> DataSource:
    """The source row locked until the transaction ends (a worker merging renewed credentials
    into it must not race an API PATCH); not scoped to a domain: the caller runs its job."""
    return found(
        session.scalar(select(DataSource).where(DataSource.id == source_id).with_for_update()),
        "data source",
        source_id,
    )


def list_sources_query(domain_id: uuid.UUID, *, type_: str | None = None) -> Select[DataSource]:
    """The domain's sources, newest first (ordering is left to the paginator)."""
    query = select(DataSource).where(DataSource.domain_id == domain_id)
    if type_ is not None:
        query = query.where(DataSource.type == type_)
    return query


def update_source(
    session: Session,
    source: DataSource,
    *,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    credentials: bytes | None = None,
    clear_credentials: bool = False,
) -> DataSource:
    """Apply the given changes; `credentials=None` keeps the stored token unless cleared."""
    if name is not None:
        source.name = name
    if config is not None:
        source.config = config
    if credentials is not None:
        source.credentials = credentials
    elif clear_credentials:
        source.credentials = None
    session.flush()
    session.refresh(source)
    return source


def live_job_count(session: Session, source_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.data_source_id == source_id, Job.status.in_(LIVE_STATUSES))
        )
        or 0
    )


def delete_source(session: Session, source_id: uuid.UUID, domain_id: uuid.UUID) -> None:
    """Delete the source (its jobs, uploads and schedules cascade) unless a job is live on it."""
    get_source(session, source_id, domain_id)
    if live_job_count(session, source_id):
        raise Conflict(f"data source {source_id} has running or queued jobs: cancel them first")
    session.execute(
        delete(DataSource).where(DataSource.id == source_id, DataSource.domain_id == domain_id)
    )
