"""Retention: what each domain keeps, and the small-batch statements that remove the rest.

Why batches: a purge of a million log lines in one statement holds its row locks and its
snapshot for seconds and bloats WAL in one burst. Each statement here touches at most `limit`
rows, found through an index from the domain's jobs (`ix_jobs_domain_created` then the
`(job_id, seq)` / `(job_id, record)` / `(job_id, lead_id)` indexes), and the caller commits each
batch on its own. None of them locks a row a running job writes: log lines and row errors are
only ever inserted by their job, and a job is deleted only when it is finished.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models.job_statuses import TERMINAL_STATUSES
from models.tenancy import RETENTION_DEFAULTS, Domain

#: a kind of data → the domain column holding its retention days
KINDS: dict[str, str] = {
    "job_logs": "retain_job_logs_days",
    "row_errors": "retain_row_errors_days",
    "raw_payloads": "retain_raw_payloads_days",
    "uploads": "retain_uploads_days",
    "finished_jobs": "retain_finished_jobs_days",
}
assert set(KINDS.values()) == set(RETENTION_DEFAULTS)
_FINISHED = "(" + ", ".join(f"'{s}'" for s in TERMINAL_STATUSES) + ")"


@dataclass(frozen=True)
class Due:
    domain_id: uuid.UUID
    domain_name: str
    kind: str
    cutoff: datetime


def due(session: Session, now: datetime) -> list[Due]:
    """Every (domain, kind) with a retention period, and the time before which data goes."""
    columns = [getattr(Domain, c) for c in KINDS.values()]
    found = []
    for row in session.execute(select(Domain.id, Domain.domain_name, *columns)):
        for (kind, _), days in zip(KINDS.items(), row[2:], strict=True):
            if days is not None:
                found.append(Due(row[0], row[1], kind, now - timedelta(days=int(days))))
    return found


# `:d` the domain, `:cutoff` the time before which data goes, `:n` the batch size.
_COUNT = {
    "job_logs": """SELECT count(*) FROM jobs j JOIN job_logs l ON l.job_id = j.id
                   WHERE j.domain_id = :d AND j.created_at < :cutoff AND l.ts < :cutoff""",
    "row_errors": f"""SELECT count(*) FROM jobs j JOIN job_record_errors e ON e.job_id = j.id
                     WHERE j.domain_id = :d AND j.status IN {_FINISHED}
                       AND j.finished_at < :cutoff""",
    "raw_payloads": """SELECT count(*) FROM jobs j JOIN lead_sources s ON s.job_id = j.id
                       WHERE j.domain_id = :d AND j.created_at < :cutoff
                         AND s.created_at < :cutoff AND s.raw IS NOT NULL""",
    "uploads": "SELECT count(*) FROM uploads WHERE domain_id = :d AND created_at < :cutoff",
    "finished_jobs": f"""SELECT count(*) FROM jobs WHERE domain_id = :d
                        AND status IN {_FINISHED} AND finished_at < :cutoff""",
}

_BATCH = {
    "job_logs": """DELETE FROM job_logs WHERE id IN (
                       SELECT l.id FROM jobs j JOIN job_logs l ON l.job_id = j.id
                       WHERE j.domain_id = :d AND j.created_at < :cutoff AND l.ts < :cutoff
                       LIMIT :n)""",
    "row_errors": f"""DELETE FROM job_record_errors WHERE id IN (
                         SELECT e.id FROM jobs j JOIN job_record_errors e ON e.job_id = j.id
                         WHERE j.domain_id = :d AND j.status IN {_FINISHED}
                           AND j.finished_at < :cutoff
                         LIMIT :n)""",
    "raw_payloads": """UPDATE lead_sources SET raw = NULL WHERE id IN (
                           SELECT s.id FROM jobs j JOIN lead_sources s ON s.job_id = j.id
                           WHERE j.domain_id = :d AND j.created_at < :cutoff
                             AND s.created_at < :cutoff AND s.raw IS NOT NULL
                           LIMIT :n)""",
    # one file per batch: its chunks (1 MiB each) go with it
    "uploads": """DELETE FROM uploads WHERE id IN (
                      SELECT id FROM uploads WHERE domain_id = :d AND created_at < :cutoff
                      LIMIT 1)""",
}

# A finished job goes in steps of at most `:n` rows each: its log lines, its row errors, the
# provenance rows naming it (kept, unlinked), and last the job row itself.
_ONE_OLD_JOB = f"""SELECT id FROM jobs WHERE domain_id = :d AND status IN {_FINISHED}
                   AND finished_at < :cutoff LIMIT 1"""
_JOB_STEPS = (
    "DELETE FROM job_logs WHERE id IN (SELECT id FROM job_logs WHERE job_id = :j LIMIT :n)",
    """DELETE FROM job_record_errors WHERE id IN (
           SELECT id FROM job_record_errors WHERE job_id = :j LIMIT :n)""",
    """UPDATE lead_sources SET job_id = NULL WHERE id IN (
           SELECT id FROM lead_sources WHERE job_id = :j LIMIT :n)""",
    f"DELETE FROM jobs WHERE id = :j AND status IN {_FINISHED}",
)


def count_due(session: Session, item: Due) -> int:
    return int(
        session.scalar(text(_COUNT[item.kind]), {"d": item.domain_id, "cutoff": item.cutoff}) or 0
    )


def purge_batch(session: Session, item: Due, limit: int) -> int:
    """Remove at most `limit` rows of `item` (for uploads: one file); how many went. The
    caller commits; 0 means nothing of this kind is due any more."""
    params = {"d": item.domain_id, "cutoff": item.cutoff, "n": limit}
    if item.kind != "finished_jobs":
        return int(session.execute(text(_BATCH[item.kind]), params).rowcount or 0)  # type: ignore[attr-defined]
    job_id = session.scalar(text(_ONE_OLD_JOB), params)
    if job_id is None:
        return 0
    for step in _JOB_STEPS:
        done = int(session.execute(text(step), {"j": job_id, "n": limit}).rowcount or 0)  # type: ignore[attr-defined]
        if done:
            return done
    return 0
