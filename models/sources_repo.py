"""Data-source queries, always scoped to one domain.

Credentials arrive here already encrypted (a Fernet token): this module never sees a clear secret,
so nothing it logs or returns can leak one.

Delete is soft (`deleted_at`), and reversible by `restore_source`. A deleted source is not found
by `get_source` (so no new job, PATCH or test reaches it) and its schedules stop firing
(`schedules_repo.firing_clause`). Its jobs: while one is queued or running (a worker holds or is
about to hold it) the DELETE is refused with 409, as before soft delete: cancel it first, so
"deleted" never means "still scraping". Pending and paused jobs are cancelled with the source,
since a start, a resume or the reaper's rate-limit resume would otherwise run them on a source
the user removed; restoring the source does not bring them back (start a new job).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from models import job_states
from models.base import found
from models.job_statuses import LIVE_STATUSES
from models.jobs import Job
from models.notify import pg_notify
from models.schedules import Schedule
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


def get_source(
    session: Session, source_id: uuid.UUID, domain_id: uuid.UUID, *, include_deleted: bool = False
) -> DataSource:
    """The source if it belongs to `domain_id`; another domain's source is simply not found,
    and so is a deleted one unless `include_deleted`."""
    query = select(DataSource).where(DataSource.id == source_id, DataSource.domain_id == domain_id)
    if not include_deleted:
        query = query.where(DataSource.deleted_at.is_(None))
    return found(session.scalar(query), "data source", source_id)


def lock_source(session: Session, source_id: uuid.UUID) -> DataSource:
    """The source row locked until the transaction ends (a worker merging renewed credentials
    into it must not race an API PATCH); not scoped to a domain: the caller runs its job."""
    return found(
        session.scalar(select(DataSource).where(DataSource.id == source_id).with_for_update()),
        "data source",
        source_id,
    )


def list_sources_query(
    domain_id: uuid.UUID, *, type_: str | None = None, include_deleted: bool = False
) -> Select[DataSource]:
    """The domain's sources, newest first (ordering is left to the paginator)."""
    query = select(DataSource).where(DataSource.domain_id == domain_id)
    if not include_deleted:
        query = query.where(DataSource.deleted_at.is_(None))
    if type_ is not None:
        query = query.where(DataSource.type == type_)
    return query


def every_source(session: Session, type_: str | None = None) -> list[DataSource]:
    """Every data source of every domain, by name (`dashin sources list --local`)."""
    query = select(DataSource).order_by(DataSource.name, DataSource.id)
    if type_:
        query = query.where(DataSource.type == type_)
    return list(session.scalars(query))


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
    """Soft-delete the source (module docstring); 409 while a job is queued or running on it."""
    get_source(session, source_id, domain_id)
    if live_job_count(session, source_id):
        raise Conflict(f"data source {source_id} has running or queued jobs: cancel them first")
    idle = session.scalars(
        select(Job.id).where(Job.data_source_id == source_id, Job.status.in_(("pending", "paused")))
    )
    for job_id in list(idle):
        job_states.cancel(session, job_id)
    session.execute(
        update(DataSource).where(DataSource.id == source_id).values(deleted_at=func.now())
    )
    _notify_schedules(session, source_id)


def restore_source(session: Session, source_id: uuid.UUID, domain_id: uuid.UUID) -> DataSource:
    """Undo `delete_source`: the source is found again and its live schedules fire again."""
    source = get_source(session, source_id, domain_id, include_deleted=True)
    if source.deleted_at is not None:
        source.deleted_at = None
        session.flush()
        _notify_schedules(session, source_id)
    session.refresh(source)
    return source


def _notify_schedules(session: Session, source_id: uuid.UUID) -> None:
    """The scheduler mirrors schedules; tell it to reload those whose source came or went."""
    for schedule_id in session.scalars(
        select(Schedule.id).where(Schedule.data_source_id == source_id)
    ):
        pg_notify(session, "schedules", str(schedule_id))
