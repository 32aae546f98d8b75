"""`/jobs/{id}/logs`: a job's structured log lines, as pages or as a live SSE stream.

Lines are ordered by their per-job `seq` (commit-ordered, ARCHITECTURE §8); the stream uses it as
the event id, so a client that reconnects with `Last-Event-ID` continues exactly where it was.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query
from sqlalchemy.orm import Session
from sse_starlette import EventSourceResponse

from api import sse
from api.db_threads import run_db
from api.deps import ReaderDep, SessionDep, StreamAccessDep
from api.problems import problem_responses
from api.schemas.logs import LogLevel, LogLineOut, LogPage
from models import job_logs, jobs_query, jobs_repo

router = APIRouter(prefix="/jobs/{job_id}/logs", tags=["logs"])

AfterSeq = Annotated[int, Query(ge=0, description="Only lines with a larger seq")]
Level = Annotated[LogLevel | None, Query(description="Only lines of this level or above")]


@router.get("", responses=problem_responses(404, 422))
def list_logs(
    job_id: uuid.UUID,
    session: SessionDep,
    principal: ReaderDep,
    after_seq: AfterSeq = 0,
    level: Level = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> LogPage:
    """A job's log lines after `after_seq`, in order; `next_after_seq` continues the tail."""
    jobs_repo.get_job(session, job_id, principal.domain_id)
    lines = job_logs.tail(session, job_id, after_seq=after_seq, min_level=level, limit=limit)
    return LogPage(
        items=[LogLineOut.build(line) for line in lines],
        next_after_seq=lines[-1].seq if lines else after_seq,
    )


def _job_exists(session: Session, *, job_id: uuid.UUID, domain_id: uuid.UUID) -> str:
    return jobs_query.job_status(session, job_id, domain_id)


@router.get(
    "/stream",
    responses={
        **problem_responses(404, 422),
        200: {
            "content": {"text/event-stream": {}},
            "description": "`log` events, then `end` (or `revoked` when the caller lost access)",
        },
    },
)
async def stream_logs(
    job_id: uuid.UUID,
    access: StreamAccessDep,
    after_seq: AfterSeq = 0,
    level: Level = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this seq")
    ] = None,
) -> EventSourceResponse:
    """Server-Sent Events: one `log` event per line (`id` = seq), then `end` once the job is over.

    A reconnecting client's `Last-Event-ID` wins over `after_seq` (browsers resend the original
    URL), so it resumes without gaps or repeats. A caller who loses access (revoked key, removed
    from the domain) gets a last `revoked` event.
    """
    principal = access.principal
    await run_db(partial(_job_exists, job_id=job_id, domain_id=principal.domain_id))
    start = after_seq
    if last_event_id is not None and last_event_id.strip().isdigit():
        start = int(last_event_id.strip())
    return EventSourceResponse(
        sse.log_events(job_id, principal.domain_id, start, level, access.still_allowed),
        ping=sse.KEEPALIVE_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
