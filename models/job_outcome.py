"""How a job that ran to its end is judged: completed, completed with warnings, or failed.

Why: a LinkedIn job once finished `completed` with 345 records fetched and 345 rejected, and a
capped search can leave matches no partition reaches; nobody noticed. So, when the runner
finishes a job without an error of its own:

* every fetched record rejected (and at least one fetched) → `failed`, `error_code`
  `all_records_rejected`, the message naming the commonest reason and one sample; unless every
  rejection was the suppression list's (`suppressed`): that job completes with the warning;
* otherwise `completed`, with one warning per kind of loss: `records_rejected` (some records
  rejected; they are listed by `GET /jobs/{id}/errors`) and `matches_missed` (matches a
  partitioned search could not reach, `jobs.progress_missed`). A warning is
  `{"code", "count", "message"}`, the same shape on the job, the source and the notification.

The judgement reads the job row under `FOR UPDATE` (its counters are final: the runner holds the
lease and has no page in flight), so the status it decides is the one the finish move writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.job_statuses import MOVES
from models.jobs import Job, JobRecordError

ALL_RECORDS_REJECTED = "all_records_rejected"
RECORDS_REJECTED = "records_rejected"
MATCHES_MISSED = "matches_missed"
_FINISHABLE = MOVES["finish"].sources


@dataclass(frozen=True, slots=True)
class Outcome:
    """The columns the finish move writes."""

    status: str
    error: str | None = None
    error_code: str | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)


def judge(
    session: Session,
    job_id: uuid.UUID,
    lease: int,
    *,
    error: str | None = None,
    error_code: str | None = None,
) -> Outcome | None:
    """The outcome of finishing the job now; None when the lease is no longer ours."""
    row = session.execute(
        select(Job.status, Job.fetched, Job.rejected, Job.progress_missed)
        .where(Job.id == job_id, Job.lease == lease, Job.status.in_(_FINISHABLE))
        .with_for_update()
    ).one_or_none()
    if row is None:
        return None
    if error is not None:
        return Outcome("failed", error, error_code)
    if row.status == "cancelling":
        return Outcome("cancelled")
    fetched, rejected, missed = int(row.fetched), int(row.rejected), int(row.progress_missed)
    if fetched and rejected == fetched and not _only_suppressed(session, job_id):
        return Outcome(
            "failed",
            f"{ALL_RECORDS_REJECTED}: all {fetched} fetched records were rejected; "
            f"{_reasons(session, job_id)}",
            ALL_RECORDS_REJECTED,
        )
    warnings = []
    if rejected:
        warnings.append(
            warning(
                RECORDS_REJECTED,
                rejected,
                f"{rejected} of {fetched} fetched records were rejected; "
                f"{_reasons(session, job_id)} (all of them: GET /jobs/{job_id}/errors)",
            )
        )
    if missed:
        warnings.append(
            warning(
                MATCHES_MISSED,
                missed,
                f"{missed} matches of the search could not be reached through partitioning; "
                "filter the job on the places or ranges you need to fetch them",
            )
        )
    return Outcome("completed", warnings=warnings)


def _only_suppressed(session: Session, job_id: uuid.UUID) -> bool:
    """Every rejection was the domain's own suppression list: the job did its work (an import
    of people who all opted out is no failure to alert anyone about)."""
    codes = set(
        session.scalars(
            select(JobRecordError.code).where(JobRecordError.job_id == job_id).distinct()
        )
    )
    return codes == {"suppressed"}


def warning(code: str, count: int, message: str) -> dict[str, Any]:
    return {"code": code, "count": count, "message": message}


def _reasons(session: Session, job_id: uuid.UUID) -> str:
    """`commonest reason: missing_key (300), e.g. record 3 (line 4): <message>`."""
    top = session.execute(
        select(JobRecordError.code, func.count().label("n"))
        .where(JobRecordError.job_id == job_id)
        .group_by(JobRecordError.code)
        .order_by(func.count().desc(), JobRecordError.code)
        .limit(1)
    ).one_or_none()
    if top is None:
        return "no row errors were recorded"
    sample = session.execute(
        select(JobRecordError.record, JobRecordError.line, JobRecordError.message)
        .where(JobRecordError.job_id == job_id, JobRecordError.code == top.code)
        .order_by(JobRecordError.id)
        .limit(1)
    ).one()
    where = f"record {sample.record}" if sample.record is not None else "a record"
    if sample.line is not None:
        where += f" (line {sample.line})"
    return f"commonest reason: {top.code} ({top.n}), e.g. {where}: {sample.message}"
