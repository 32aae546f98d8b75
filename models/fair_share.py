"""Fair share of worker threads between domains (tenants): the questions the runner asks.

Two reads, no writes (the job row's writer stays `models.job_states`):

- `hold_back` — before acquiring a queued job: may its domain start one more job now? Not when
  the domain already runs `max_running` jobs (the per-domain limit), nor when it runs some and
  another domain with fewer running jobs has one waiting in the queues this worker serves. A
  domain that runs nothing is never held back, so no domain can be starved by another's wait.
- `others_waiting` — after a time slice: is anyone waiting who could start if this job handed
  its thread back? If not, a lone job keeps its thread instead of paying for a re-acquire.

"Running" is the statuses that hold a thread: running, pausing, cancelling.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, aliased

from models.job_statuses import HELD_STATUSES
from models.jobs import Job

#: statuses whose job holds a worker thread
HOLDING = HELD_STATUSES


def _running(domain_id: Any) -> ColumnElement[int]:
    """How many jobs of the domain (a value, or a correlated column) hold a thread."""
    held = aliased(Job)
    return (
        select(func.count())
        .where(held.domain_id == domain_id, held.status.in_(HOLDING))
        .scalar_subquery()
    )


def _waiting(
    me: uuid.UUID, queues: Collection[str] | None, *extra: ColumnElement[bool]
) -> ColumnElement[bool]:
    """A queued job other than `me` in one of `queues` (None: any queue) that may start."""
    conditions = [Job.status == "queued", Job.id != me, *extra]
    if queues is not None:
        conditions.append(Job.queue.in_(list(queues)))
    return select(Job.id).where(and_(*conditions)).limit(1).exists()


def hold_back(
    session: Session,
    job_id: uuid.UUID,
    *,
    max_running: int,
    queues: Collection[str] | None = None,
) -> str | None:
    """Why the queued job should wait instead of starting now (None: it may start).

    Serialised per domain with a transaction-scoped advisory lock, so two threads acquiring
    jobs of one domain at once cannot both slip under the limit. Call it in the transaction
    that then acquires the job, and acquire only when it answers None.
    """
    domain_id = session.scalar(select(Job.domain_id).where(Job.id == job_id))
    if domain_id is None:
        return None  # gone: acquire answers for it
    session.execute(select(func.pg_advisory_xact_lock(_lock_key(domain_id))))
    running = int(session.scalar(select(_running(domain_id))) or 0)
    if running >= max_running:
        return f"its domain already runs {running} jobs (DASHIN_MAX_RUNNING_PER_DOMAIN)"
    if running == 0:
        return None
    starved = session.execute(
        select(
            _waiting(job_id, queues, Job.domain_id != domain_id, _running(Job.domain_id) < running)
        )
    ).scalar()
    if starved:
        return f"its domain runs {running} jobs while another domain with fewer waits"
    return None


def others_waiting(
    session: Session,
    job_id: uuid.UUID,
    *,
    max_running: int,
    queues: Collection[str] | None = None,
) -> bool:
    """Is another job queued that could start (its domain below the limit) on a free thread?"""
    waiting = _waiting(job_id, queues, _running(Job.domain_id) < max_running)
    return bool(session.execute(select(waiting)).scalar())


def _lock_key(domain_id: uuid.UUID) -> int:
    """A stable signed 64-bit advisory-lock key per domain (namespaced from other locks)."""
    return int.from_bytes(domain_id.bytes[:8], "big", signed=True) ^ 0x46_41_49_52  # "FAIR"
