"""The job state machine (ARCHITECTURE §3), and the only writer of the job row.

One function per move, each one compare-and-set; the statuses a move starts from and leads to
are read off the declaration in `models.job_statuses`, never spelled here. The runner's other
writes of the row live here too: the page fence and counters, the heartbeat, and the log
sequence (`append_log`), so the lease rules are in one module.

Every move is a single `UPDATE jobs ... WHERE id = :id AND status IN (...) RETURNING ...` that
also reserves one log `seq`, so the move, its log line and its `NOTIFY job_status` commit
together. A move that matches no row raises `InvalidTransition` carrying the current status
(the API answers 409 with it) — except the runner's own moves, which return None when the lease
fence shows another runner owns the job. Callers own the transaction and enqueue only after
commit (`workers.enqueue`).

    pending ─start─► queued ─acquire─► running ─finish─► completed | failed
       │               │ ▲                │ ╲
       │            pause│ │resume      pause cancel
       ▼               ▼ │                ▼    ▼
    cancelled ◄─cancel─ paused ◄──────  pausing  cancelling ──► cancelled
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, case, func, select, update
from sqlalchemy.orm import Session

from models import job_outcome, source_metrics
from models.job_logs import LogLine, insert_lines
from models.job_statuses import HELD_STATUSES, MOVES, TERMINAL_STATUSES
from models.jobs import Job
from models.notifications_repo import domain_managers, notify_users
from models.notify import pg_notify
from models.webhook_events import job_moved
from runtime.errors import InvalidTransition, NotFound
from runtime.logging import current_request_id


@dataclass(frozen=True, slots=True)
class Moved:
    """The job row as the move left it (the columns callers need)."""

    id: uuid.UUID
    domain_id: uuid.UUID
    data_source_id: uuid.UUID
    status: str
    queue: str
    lease: int
    attempts: int
    checkpoint: dict[str, Any] | None
    params: dict[str, Any]
    created_by: uuid.UUID | None
    error: str | None
    error_code: str | None
    #: `[{"code", "count", "message"}]` of a completed job (`models.job_outcome`)
    warnings: list[dict[str, Any]]


_RETURNING = (
    Job.id,
    Job.domain_id,
    Job.data_source_id,
    Job.status,
    Job.queue,
    Job.lease,
    Job.attempts,
    Job.checkpoint,
    Job.params,
    Job.created_by,
    Job.error,
    Job.error_code,
    Job.warnings,
    Job.log_seq,
)


def _cas(
    session: Session,
    job_id: uuid.UUID,
    move: str,
    values: dict[str, Any],
    *,
    where: Sequence[ColumnElement[bool]] = (),
    message: str = "",
    level: str = "info",
    fields: dict[str, Any] | None = None,
) -> Moved | None:
    to = MOVES[move].to
    values = {"status": _target(to), "finished_at": _finished_at(to), **values}
    row = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(tuple(to)), *where)
        .values(log_seq=Job.log_seq + 1, **values)
        .returning(*_RETURNING)
    ).one_or_none()
    if row is None:
        return None
    moved = Moved(*row[:-1])
    insert_lines(
        session,
        job_id,
        int(row.log_seq),
        [
            LogLine(
                level,
                f"job.{move}",
                message or f"job {move}: now {moved.status}",
                _with_request(fields),
            )
        ],
    )
    pg_notify(session, "job_status", f"{job_id}:{moved.status}")
    if moved.status in TERMINAL_STATUSES or move == "start":  # into or out of a terminal state
        source_metrics.recount_jobs(session, moved.data_source_id)
    if moved.status in TERMINAL_STATUSES:
        _notify_terminal(session, moved)
    job_moved(session, moved.domain_id, job_id, moved.data_source_id, moved.status)
    return moved


def _target(to: Mapping[str, str]) -> Any:
    """The status a move leads to from the row's current one, as the declaration says."""
    targets = set(to.values())
    if len(targets) == 1:
        return targets.pop()
    return case(*((Job.status == source, target) for source, target in to.items()))


def _finished_at(to: Mapping[str, str]) -> Any:
    """`finished_at` is set exactly while a job is terminal: now on the way in, NULL otherwise."""
    ending = [source for source, target in to.items() if target in TERMINAL_STATUSES]
    if len(ending) == len(to):
        return _now()
    if not ending:
        return None
    return case((Job.status.in_(ending), _now()), else_=None)


def _with_request(fields: dict[str, Any] | None) -> dict[str, Any]:
    """A move made while serving an API request names it (`request_id`), so a job's log leads
    back to the request that started, paused or cancelled it."""
    request_id = current_request_id()
    if request_id is None:
        return fields or {}
    return {**(fields or {}), "request_id": request_id}


def _back_to_queue() -> dict[str, Any]:
    """The columns every move back to `queued` resets (start, resume, resume at resume_at)."""
    return {
        "attempts": 0,
        "enqueued_at": _now(),
        "pause_reason": None,
        "resume_at": None,
    }


def _refuse(session: Session, job_id: uuid.UUID, move: str) -> InvalidTransition:
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    if status is None:
        raise NotFound(f"job {job_id} not found")
    return InvalidTransition(job_id, move, status)


def _notify_terminal(session: Session, moved: Moved) -> None:
    """Everything a terminal move tells people, in the move's transaction.

    `job.<status>` to the creator and the domain's managers (with `warnings` and, for a failure,
    `error_code`), and one `job.warning` more when a completed job carries warnings.
    """
    recipients = [moved.created_by, *domain_managers(session, moved.domain_id)]
    payload: dict[str, Any] = {
        "job_id": str(moved.id),
        "data_source_id": str(moved.data_source_id),
        "status": moved.status,
        "warnings": moved.warnings,
    }
    if moved.status == "failed":
        payload["error_code"] = moved.error_code
    notify_users(session, moved.domain_id, recipients, f"job.{moved.status}", payload)
    if moved.warnings:
        notify_users(session, moved.domain_id, recipients, "job.warning", payload)


def _now() -> Any:
    return func.now()


# ---- moves made by the API and the scheduler -------------------------------------------------


def start(session: Session, job_id: uuid.UUID) -> Moved:
    """pending, failed → queued (the caller enqueues after commit)."""
    reset = {**_back_to_queue(), "error": None, "error_code": None, "warnings": []}
    return _user_move(session, job_id, "start", reset, "job queued")


def pause(session: Session, job_id: uuid.UUID) -> Moved:
    """queued → paused at once; running → pausing (the runner pauses after the current page)."""
    return _user_move(session, job_id, "pause", {"pause_reason": "user"}, "pause requested")


def resume(session: Session, job_id: uuid.UUID) -> Moved:
    """paused → queued (the caller enqueues after commit)."""
    return _user_move(session, job_id, "resume", _back_to_queue(), "job resumed")


def cancel(session: Session, job_id: uuid.UUID) -> Moved:
    """pending, queued, paused → cancelled; running, pausing → cancelling."""
    return _user_move(session, job_id, "cancel", {}, "cancel requested")


def _user_move(
    session: Session, job_id: uuid.UUID, move: str, values: dict[str, Any], message: str
) -> Moved:
    """A move an operator asked for: refused with the job's current status when it matches no
    row (the API answers 409 with it)."""
    moved = _cas(session, job_id, move, values, message=message)
    if moved is None:
        raise _refuse(session, job_id, move)
    return moved


# ---- moves made by the runner (fenced by the lease; None = fenced out) -------------------------


def acquire(session: Session, job_id: uuid.UUID, max_attempts: int) -> Moved | None:
    """queued → running, bumping the lease. None when the job is not ours to run.

    A job acquired `max_attempts` times without committing a page is poison: it fails instead.
    """
    moved = _cas(
        session,
        job_id,
        "acquire",
        {
            "lease": Job.lease + 1,
            "attempts": Job.attempts + 1,
            "heartbeat_at": _now(),
            "started_at": func.coalesce(Job.started_at, _now()),
        },
        where=[Job.attempts < max_attempts],
        message="job acquired by a worker",
    )
    if moved is not None:
        return moved
    poisoned = _cas(
        session,
        job_id,
        "poison",
        {"error": "too many attempts", "error_code": "too_many_attempts", "warnings": []},
        where=[Job.attempts >= max_attempts],
        level="error",
        message=f"job failed: acquired {max_attempts} times without committing a page",
    )
    if poisoned is not None:
        source_metrics.record_run(
            session,
            poisoned.data_source_id,
            status="failed",
            error="too many attempts",
            warnings=[],
        )
    return None


def settle_after_page(session: Session, job_id: uuid.UUID, lease: int) -> Moved | None:
    """pausing → paused, cancelling → cancelled, once the current page has committed."""
    return _cas(
        session,
        job_id,
        "settle",
        {},
        where=[Job.lease == lease],
        message="stopped after the current page",
    )


def park_rate_limited(
    session: Session, job_id: uuid.UUID, lease: int, resume_at: datetime, reason: str
) -> Moved | None:
    """running → paused (rate_limited) until `resume_at`; the reaper resumes it then."""
    return _cas(
        session,
        job_id,
        "park",
        {"pause_reason": "rate_limited", "resume_at": resume_at},
        where=[Job.lease == lease],
        level="warning",
        message=f"provider rate limit: paused until {resume_at.isoformat()} ({reason})",
        fields={"resume_at": resume_at.isoformat()},
    )


def pause_budget_exhausted(
    session: Session, job_id: uuid.UUID, lease: int, budget: int | None
) -> Moved | None:
    """running → paused (`budget_exhausted`): the next paid call would pass the data source's
    credit budget. No `resume_at`: someone raises the budget and resumes the job, which carries
    on from its checkpoint. The creator and the domain's managers are told."""
    moved = _cas(
        session,
        job_id,
        "park",
        {"pause_reason": "budget_exhausted", "resume_at": None},
        where=[Job.lease == lease],
        level="warning",
        message=f"credit budget of {budget} spent: paused until the budget is raised and the "
        "job resumed",
        fields={"budget": budget},
    )
    if moved is not None:
        recipients = [moved.created_by, *domain_managers(session, moved.domain_id)]
        payload = {
            "job_id": str(moved.id),
            "data_source_id": str(moved.data_source_id),
            "status": moved.status,
            "pause_reason": "budget_exhausted",
            "budget": budget,
        }
        notify_users(session, moved.domain_id, recipients, "job.budget_exhausted", payload)
    return moved


#: why a runner hands a job back: the move's log event (`job.<move>`) and its message
HAND_BACKS = {
    "graceful_stop": "worker shutting down: job handed back",
    "yield": "time slice used: job handed back to the end of its queue",
}


def graceful_stop(
    session: Session, job_id: uuid.UUID, lease: int, move: str = "graceful_stop"
) -> Moved | None:
    """A runner hands the job back: running → queued, pausing → paused, cancelling → cancelled.

    On worker shutdown (`graceful_stop`), and when a job has used its time slice while others
    wait (`yield`, fair share): one move, so the checkpoint, lease and attempts rules are the
    same for both.
    """
    return _cas(
        session,
        job_id,
        move,
        {
            "enqueued_at": _now(),
            # a hand-back is not a failed attempt (0 already if a page committed since acquire)
            "attempts": case(
                (Job.status == "running", func.greatest(Job.attempts - 1, 0)), else_=Job.attempts
            ),
        },
        where=[Job.lease == lease],
        message=HAND_BACKS[move],
    )


def hold(session: Session, job_id: uuid.UUID) -> str | None:
    """A queued job held back by fair share (`models.fair_share`) stays queued: not a move (no
    log line, `attempts` untouched), but its `enqueued_at` restarts — its message went back
    to the broker with a delay, so the reaper need not send another. Returns its queue."""
    return session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(enqueued_at=_now())
        .returning(Job.queue)
    ).scalar_one_or_none()


def finish(
    session: Session,
    job_id: uuid.UUID,
    lease: int,
    *,
    error: str | None = None,
    error_code: str | None = None,
    sync_state: dict[str, Any] | None = None,
) -> Moved | None:
    """running/pausing → completed or failed; cancelling → cancelled. Records the source's run.

    Without an `error`, `models.job_outcome` judges the counters: every record rejected fails
    the job (`all_records_rejected`); rejected records or missed matches complete it with
    warnings.
    """
    outcome = job_outcome.judge(session, job_id, lease, error=error, error_code=error_code)
    if outcome is None:
        return None
    if outcome.error is not None:
        message = f"job failed: {outcome.error}"
    elif outcome.warnings:
        message = "job finished with warnings: " + "; ".join(
            f"{w['code']} ({w['count']})" for w in outcome.warnings
        )
    else:
        message = "job finished"
    moved = _cas(
        session,
        job_id,
        "finish",
        {
            "status": outcome.status,
            "error": outcome.error,
            "error_code": outcome.error_code,
            "warnings": outcome.warnings,
            "finished_at": _now(),
            "heartbeat_at": _now(),
        },
        where=[Job.lease == lease],
        level="error" if outcome.error else "warning" if outcome.warnings else "info",
        message=message,
        fields={"warnings": outcome.warnings} if outcome.warnings else None,
    )
    if moved is not None:
        source_metrics.record_run(
            session,
            moved.data_source_id,
            status=moved.status,
            error=moved.error,
            warnings=moved.warnings,
            sync_state=sync_state if moved.status == "completed" else None,
        )
    return moved


# ---- the runner's other writes, under its lease -----------------------------------------------

#: the page transaction updates `jobs` with Core statements: the ORM's bulk-update path costs
#: more Python per page than the two statements themselves
_JOBS = cast(Table, Job.__table__)


@dataclass(frozen=True, slots=True)
class PageCounts:
    """What one committed page adds to the job's counters (ARCHITECTURE §6)."""

    pages: int
    fetched: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    credits_used: int = 0
    #: the connector's progress after the page (done, total, missed), when it reports one
    progress: tuple[int, int | None, int] | None = None


def fence(session: Session, job_id: uuid.UUID, lease: int) -> str | None:
    """The page transaction's first statement: the job's status while this lease holds it (and
    a fresh heartbeat), or None when another runner owns the job and nothing may be written."""
    return session.execute(
        update(_JOBS)
        .where(_JOBS.c.id == job_id, _JOBS.c.lease == lease, _JOBS.c.status.in_(HELD_STATUSES))
        .values(heartbeat_at=func.now())
        .returning(_JOBS.c.status)
    ).scalar_one_or_none()


def record_page(
    session: Session,
    job_id: uuid.UUID,
    lease: int,
    *,
    checkpoint: dict[str, Any],
    counts: PageCounts,
    lines: Sequence[LogLine],
) -> str:
    """After `fence` matched: the page's counters, its checkpoint, `attempts = 0` (a committed
    page proves progress) and its log lines, in the page's transaction. Returns the status."""
    c = _JOBS.c
    values: dict[str, Any] = {
        "checkpoint": checkpoint,
        "attempts": 0,
        "pages": c.pages + counts.pages,
        "fetched": c.fetched + counts.fetched,
        "inserted": c.inserted + counts.inserted,
        "updated": c.updated + counts.updated,
        "unchanged": c.unchanged + counts.unchanged,
        "rejected": c.rejected + counts.rejected,
        "credits_used": c.credits_used + counts.credits_used,
        "log_seq": c.log_seq + len(lines),
    }
    if counts.progress is not None:
        values["progress_done"], values["progress_total"], values["progress_missed"] = (
            counts.progress
        )
    row = session.execute(
        update(_JOBS)
        .where(c.id == job_id, c.lease == lease)
        .values(**values)
        .returning(c.log_seq, c.status)
    ).one()
    insert_lines(session, job_id, int(row.log_seq) - len(lines) + 1, lines)
    return str(row.status)


def heartbeat(
    session: Session, job_id: uuid.UUID, lease: int, lines: Sequence[LogLine]
) -> str | None:
    """The runner's heartbeat: `heartbeat_at` and any buffered log lines, under the lease. The
    job's status (a pause or cancel request shows here), or None when the job was taken over."""
    status = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease == lease)
        .values(heartbeat_at=func.now())
        .returning(Job.status)
    ).scalar_one_or_none()
    if status is not None and lines:
        append_log(session, job_id, lines, lease=lease)
    return status


def append_log(
    session: Session, job_id: uuid.UUID, lines: Sequence[LogLine], *, lease: int | None = None
) -> int | None:
    """Reserve seq numbers on the job row and insert `lines`; with `lease`, only while we hold
    the job (ARCHITECTURE §8). Returns the last seq written, or None when the fence matched no
    row."""
    if not lines:
        return 0
    stmt = update(Job).where(Job.id == job_id)
    if lease is not None:
        stmt = stmt.where(Job.lease == lease)
    last = session.execute(
        stmt.values(log_seq=Job.log_seq + len(lines)).returning(Job.log_seq)
    ).scalar_one_or_none()
    if last is None:
        return None
    insert_lines(session, job_id, last - len(lines) + 1, lines)
    return int(last)


# ---- moves made by the reaper ------------------------------------------------------------------


def reap_stale(session: Session, heartbeat_timeout_s: float) -> list[Moved]:
    """Jobs whose runner stopped heartbeating: running → queued, pausing → paused,
    cancelling → cancelled, each with `lease + 1` so a slow old runner is fenced out."""
    cutoff = func.now() - timedelta(seconds=heartbeat_timeout_s)
    stale = list(
        session.scalars(
            select(Job.id)
            .where(Job.status.in_(HELD_STATUSES), Job.heartbeat_at < cutoff)
            .with_for_update(skip_locked=True)
        )
    )
    moved: list[Moved] = []
    for job_id in stale:
        result = _cas(
            session,
            job_id,
            "reap",
            {"lease": Job.lease + 1, "enqueued_at": _now()},
            where=[Job.heartbeat_at < cutoff],
            level="warning",
            message=f"no heartbeat for {heartbeat_timeout_s:.0f}s: worker presumed dead",
        )
        if result is not None:
            moved.append(result)
    return moved


def requeue_lost(session: Session, grace_s: float) -> list[Moved]:
    """queued jobs whose message may be lost (e.g. Redis flushed): re-enqueue them."""
    cutoff = func.now() - timedelta(seconds=grace_s)
    rows = session.execute(
        update(Job)
        .where(Job.status == "queued", and_(Job.enqueued_at.is_not(None), Job.enqueued_at < cutoff))
        .values(enqueued_at=_now())
        .returning(*_RETURNING)
    ).all()
    return [Moved(*row[:-1]) for row in rows]


def resume_due(session: Session) -> list[Moved]:
    """Rate-limited paused jobs whose `resume_at` has come: paused → queued."""
    due = list(
        session.scalars(
            select(Job.id).where(
                Job.status == "paused",
                Job.pause_reason == "rate_limited",
                Job.resume_at <= func.now(),
            )
        )
    )
    moved = []
    for job_id in due:
        result = _cas(
            session,
            job_id,
            "resume",
            _back_to_queue(),
            where=[Job.pause_reason == "rate_limited", Job.resume_at <= func.now()],
            message="rate-limit wait over: job resumed",
        )
        if result is not None:
            moved.append(result)
    return moved
