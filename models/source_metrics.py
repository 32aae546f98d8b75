"""A data source's run metrics, kept equal to the sums over its jobs whatever happens to them.

Why: the finish step used to add the last run segment's new leads and one job to the source, so a
job paused and resumed (or parked, reaped, crashed and re-run) undercounted its leads, and a
failed job that was started again counted twice. Each metric is now written where its truth is:

* `leads_total` = the sum of its jobs' `inserted`: increased by the page's new leads in the very
  transaction whose fenced UPDATE adds them to `jobs.inserted` (`add_page_leads`), so neither can
  commit without the other, whatever run segment the page belongs to.
* `jobs_total` / `jobs_failed` = how many of its jobs are in a terminal state / are `failed`:
  counted again from the jobs (`recount_jobs`) by every move into or out of a terminal state, in
  that move's transaction. The source's row is locked first and counted by the next statement:
  under READ COMMITTED that statement's snapshot sees every move committed before the lock was
  granted, so two jobs of one source ending at once cannot overwrite each other's count. (Locks
  are taken job row first, source row second, everywhere: no deadlock.)
* `last_run_at`, `last_success_at`, `last_error`, `last_warnings` and `sync_state` describe the
  last finished run (`record_run`).

Migration 0004 recounted every source once with the same definitions.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.job_statuses import TERMINAL_STATUSES
from models.jobs import Job
from models.sources import DataSource


def add_page_leads(session: Session, data_source_id: uuid.UUID, inserted: int) -> None:
    """Count a committed page's new leads (call in the page's transaction)."""
    if inserted:
        session.execute(
            update(DataSource)
            .where(DataSource.id == data_source_id)
            .values(leads_total=DataSource.leads_total + inserted)
        )


def recount_jobs(session: Session, data_source_id: uuid.UUID) -> None:
    """`jobs_total` and `jobs_failed` counted again from the source's jobs."""
    session.execute(select(DataSource.id).where(DataSource.id == data_source_id).with_for_update())
    ended = (
        select(func.count())
        .where(Job.data_source_id == data_source_id, Job.status.in_(TERMINAL_STATUSES))
        .scalar_subquery()
    )
    failed = (
        select(func.count())
        .where(Job.data_source_id == data_source_id, Job.status == "failed")
        .scalar_subquery()
    )
    session.execute(
        update(DataSource)
        .where(DataSource.id == data_source_id)
        .values(jobs_total=ended, jobs_failed=failed)
    )


def record_run(
    session: Session,
    data_source_id: uuid.UUID,
    *,
    status: str,
    error: str | None,
    warnings: list[dict[str, Any]],
    sync_state: dict[str, Any] | None = None,
) -> None:
    """What the source's health shows of the run that just ended (finish, poison)."""
    values: dict[str, Any] = {"last_run_at": func.now(), "last_warnings": warnings}
    if status == "failed":
        values["last_error"] = error
    elif status == "completed":
        values["last_success_at"] = func.now()
        values["last_error"] = None
    if sync_state is not None:
        values["sync_state"] = sync_state
    session.execute(update(DataSource).where(DataSource.id == data_source_id).values(**values))
