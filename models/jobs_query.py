"""Read-side job queries for the API: filtered lists, row errors, and status lookups.

Moves live in `models.job_states` and creation in `models.jobs_repo`; this module only reads,
scoped to a domain, so a job id from another domain is indistinguishable from none. The two
`newest_*` reads are the exception, for the CLI's `--local` path on the operator's own database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from models.base import found
from models.campaigns import Campaign
from models.jobs import Job, JobRecordError


def list_query(
    domain_id: uuid.UUID,
    *,
    status: Sequence[str] = (),
    data_source_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    schedule_id: uuid.UUID | None = None,
) -> Select[Job]:
    query = select(Job).where(Job.domain_id == domain_id)
    if status:
        query = query.where(Job.status.in_(status))
    if data_source_id is not None:
        query = query.where(Job.data_source_id == data_source_id)
    if campaign_id is not None:
        query = query.where(Job.campaign_id == campaign_id)
    if schedule_id is not None:
        query = query.where(Job.schedule_id == schedule_id)
    return query


def newest_everywhere(
    session: Session,
    *,
    status: Sequence[str] = (),
    data_source_id: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Job]:
    """The newest jobs of every domain (`dashin jobs list --local`: the operator's own
    database, no principal to scope by)."""
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if status:
        query = query.where(Job.status.in_(status))
    if data_source_id is not None:
        query = query.where(Job.data_source_id == data_source_id)
    return list(session.scalars(query))


def newest_job_id(session: Session) -> uuid.UUID | None:
    """The newest job of any domain (`dashin logs latest --local`)."""
    return session.scalar(select(Job.id).order_by(Job.created_at.desc()).limit(1))


def job_status(session: Session, job_id: uuid.UUID, domain_id: uuid.UUID | None = None) -> str:
    """The job's current status; NotFound when it does not exist (in that domain)."""
    query = select(Job.status).where(Job.id == job_id)
    if domain_id is not None:
        query = query.where(Job.domain_id == domain_id)
    return found(session.scalar(query), "job", job_id)


def jobs_in_domain(
    session: Session, job_ids: Sequence[uuid.UUID], domain_id: uuid.UUID
) -> list[Job]:
    """Those of `job_ids` that belong to `domain_id` (the /events stream filters with this)."""
    if not job_ids:
        return []
    return list(session.scalars(select(Job).where(Job.id.in_(job_ids), Job.domain_id == domain_id)))


def record_errors(
    session: Session, job_id: uuid.UUID, *, after_id: int = 0, limit: int = 500
) -> list[JobRecordError]:
    """Row errors in record order (keyset on the row id, which follows commit order per job)."""
    return list(
        session.scalars(
            select(JobRecordError)
            .where(JobRecordError.job_id == job_id, JobRecordError.id > after_id)
            .order_by(JobRecordError.id)
            .limit(limit)
        )
    )


def iter_record_errors(
    session: Session, job_id: uuid.UUID, *, batch: int = 1000
) -> Iterator[JobRecordError]:
    """Every row error of a job, fetched in batches so a CSV export streams in bounded memory."""
    after = 0
    while True:
        rows = record_errors(session, job_id, after_id=after, limit=batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id


def campaign_in_domain(session: Session, campaign_id: uuid.UUID, domain_id: uuid.UUID) -> bool:
    """Whether a job (or schedule) may point at this campaign: same domain, not deleted."""
    found = session.scalar(
        select(Campaign.id).where(
            Campaign.id == campaign_id,
            Campaign.domain_id == domain_id,
            Campaign.deleted_at.is_(None),
        )
    )
    return found is not None
