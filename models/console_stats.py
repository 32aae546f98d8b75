"""The reads behind the console's overview charts, scoped to one domain.

Small aggregate queries over indexed columns (`lead_sources.domain_id`, `jobs.domain_id`),
bounded by a time window; the fleet-wide twins for Prometheus are in `api.metrics`. The log
events that count as provider errors and rate limits are the ones `api.metrics` counts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, cast, func, or_, select
from sqlalchemy.orm import Session

from models.jobs import Job, JobLog
from models.leads import LeadSource

#: events of the HTTP layer and the runner: a retried or fatal provider error, a 429
ERROR_EVENTS = ("http.retry", "job.provider_error")
RATE_LIMIT_EVENTS = ("http.throttled", "http.rate_limited")


@dataclass(frozen=True)
class DayCount:
    day: date
    key: str  # a data source id, or an error kind
    count: int


def leads_per_day_by_source(
    session: Session, domain_id: uuid.UUID, since: datetime
) -> list[DayCount]:
    """Distinct leads each data source produced per UTC day (provenance rows)."""
    day = cast(func.timezone("UTC", LeadSource.created_at), Date)
    rows = session.execute(
        select(day, LeadSource.data_source_id, func.count(func.distinct(LeadSource.lead_id)))
        .where(LeadSource.domain_id == domain_id, LeadSource.created_at >= since)
        .group_by(day, LeadSource.data_source_id)
        .order_by(day)
    ).all()
    return [DayCount(d, str(source), int(n)) for d, source, n in rows]


def jobs_by_status(session: Session, domain_id: uuid.UUID) -> dict[str, int]:
    rows = session.execute(
        select(Job.status, func.count()).where(Job.domain_id == domain_id).group_by(Job.status)
    ).all()
    return {str(status): int(n) for status, n in rows}


def provider_errors_per_day(
    session: Session, domain_id: uuid.UUID, since: datetime
) -> list[DayCount]:
    """Provider errors (`error`) and rate limits (`429`) per UTC day, from the job logs."""
    day = cast(func.timezone("UTC", JobLog.ts), Date)
    rows = session.execute(
        select(day, JobLog.event, func.count())
        .join(Job, Job.id == JobLog.job_id)
        .where(
            Job.domain_id == domain_id,
            JobLog.ts >= since,
            or_(JobLog.event.in_(ERROR_EVENTS), JobLog.event.in_(RATE_LIMIT_EVENTS)),
        )
        .group_by(day, JobLog.event)
        .order_by(day)
    ).all()
    return [
        DayCount(d, "429" if event in RATE_LIMIT_EVENTS else "error", int(n))
        for d, event, n in rows
    ]
