"""`/jobs`: create, list and read jobs, move them through their lifecycle, export row errors.

Moves are the state machine's compare-and-set functions (`models.job_states`); a move the
machine refuses answers 409 with the current `job_status`. A move to `queued` is enqueued only
after its transaction has committed, so the worker that picks the message up sees the row; if
the broker is down the job stays queued and the reaper sends it again.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session

from api import job_estimates, job_inputs
from api.audit import AuditedIdempotentRoute
from api.db_threads import sessions
from api.deps import ReaderDep, SessionDep, WriterDep
from api.job_moves import enqueue_after_commit
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.jobs import JobCreate, JobEstimateOut, JobOut, RecordErrorOut, RecordErrorPage
from models import job_states, jobs_query, jobs_repo
from models.job_states import Moved
from models.job_statuses import JOB_STATUSES
from models.jobs import Job
from runtime.logging import get_logger

router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=AuditedIdempotentRoute)
log = get_logger(__name__)

SORTABLE = {"created_at": Job.created_at, "updated_at": Job.updated_at}
if TYPE_CHECKING:
    JobStatus = str
else:
    #: the `status` filter's enum in the OpenAPI document, read off the declaration
    JobStatus = Literal[JOB_STATUSES]
ERROR_COLUMNS = ("record", "line", "field", "code", "message", "raw")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobOut,
    responses={
        200: {"model": JobEstimateOut, "description": "`estimate: true`: the dry run"},
        **problem_responses(403, 404, 422),
    },
)
def create_job(body: JobCreate, session: SessionDep, principal: WriterDep) -> JobOut | JSONResponse:
    """Create a job on a data source; `start: true` also queues it at once. Params are validated by
    the connector. `estimate: true` creates nothing: 200 with the matches and the credits the job
    would spend (one free search call to the provider)."""
    source = job_inputs.resolve_source(session, body.data_source_id, principal.domain_id)
    job_inputs.check_campaign(session, body.campaign_id, principal.domain_id)
    params = job_inputs.validate_params(session, source, body.params)
    if body.estimate:
        found = job_estimates.estimate(session, source, params)
        return JSONResponse(found.model_dump(mode="json"))
    job = jobs_repo.create_job(
        session,
        domain_id=principal.domain_id,
        data_source_id=source.id,
        campaign_id=body.campaign_id,
        params=params,
        created_by=principal.user_id,
    )
    assert job is not None  # only schedule slots can collide
    if body.start:
        enqueue_after_commit(session, job_states.start(session, job.id))
    return JobOut.build(jobs_repo.get_job(session, job.id, principal.domain_id))


@router.get("", responses=problem_responses(404, 422))
def list_jobs(
    session: SessionDep,
    principal: ReaderDep,
    page: PageParamsDep,
    status: Annotated[list[JobStatus] | None, Query(description="Any of these statuses")] = None,
    data_source_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    schedule_id: uuid.UUID | None = None,
) -> Page[JobOut]:
    """The domain's jobs, filtered by status, data source, campaign or schedule."""
    query = jobs_query.list_query(
        principal.domain_id,
        status=status or (),
        data_source_id=data_source_id,
        campaign_id=campaign_id,
        schedule_id=schedule_id,
    )
    rows = paginate(session, query, page, sortable=SORTABLE, id_column=Job.id)
    return rows.to_page([JobOut.build(j) for j in rows.rows])


@router.get("/{job_id}", responses=problem_responses(404))
def get_job(job_id: uuid.UUID, session: SessionDep, principal: ReaderDep) -> JobOut:
    """One job: status, counters, progress, checkpoint and error."""
    return JobOut.build(jobs_repo.get_job(session, job_id, principal.domain_id))


def _move(
    move: Callable[[Session, uuid.UUID], Moved],
    job_id: uuid.UUID,
    session: Session,
    domain_id: uuid.UUID,
) -> JobOut:
    job = jobs_repo.get_job(session, job_id, domain_id)  # another domain's job is not found
    if move in (job_states.start, job_states.resume):
        job_inputs.require_live_source(session, job.data_source_id, domain_id)
    enqueue_after_commit(session, move(session, job_id))
    session.expire_all()
    return JobOut.build(jobs_repo.get_job(session, job_id, domain_id))


_MOVE_RESPONSES = problem_responses(403, 404, 409)


@router.post("/{job_id}/start", status_code=status.HTTP_202_ACCEPTED, responses=_MOVE_RESPONSES)
def start_job(job_id: uuid.UUID, session: SessionDep, principal: WriterDep) -> JobOut:
    """pending or failed → queued (a failed job continues from its checkpoint)."""
    return _move(job_states.start, job_id, session, principal.domain_id)


@router.post("/{job_id}/pause", status_code=status.HTTP_202_ACCEPTED, responses=_MOVE_RESPONSES)
def pause_job(job_id: uuid.UUID, session: SessionDep, principal: WriterDep) -> JobOut:
    """queued → paused; running → pausing (paused after the current page)."""
    return _move(job_states.pause, job_id, session, principal.domain_id)


@router.post("/{job_id}/resume", status_code=status.HTTP_202_ACCEPTED, responses=_MOVE_RESPONSES)
def resume_job(job_id: uuid.UUID, session: SessionDep, principal: WriterDep) -> JobOut:
    """paused → queued."""
    return _move(job_states.resume, job_id, session, principal.domain_id)


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, responses=_MOVE_RESPONSES)
def cancel_job(job_id: uuid.UUID, session: SessionDep, principal: WriterDep) -> JobOut:
    """pending, queued, paused → cancelled; running, pausing → cancelling."""
    return _move(job_states.cancel, job_id, session, principal.domain_id)


@router.get(
    "/{job_id}/errors",
    responses={
        **problem_responses(404, 422),
        200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV with format=csv"},
    },
    response_model=RecordErrorPage,
)
def list_job_errors(
    job_id: uuid.UUID,
    session: SessionDep,
    principal: ReaderDep,
    format: Literal["json", "csv"] = "json",
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> RecordErrorPage | StreamingResponse:
    """Rejected records. `format=csv` streams every one of them as a CSV download."""
    jobs_repo.get_job(session, job_id, principal.domain_id)
    if format == "csv":
        return StreamingResponse(
            _errors_csv(job_id),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="job-{job_id}-errors.csv"'},
        )
    rows = jobs_query.record_errors(session, job_id, after_id=after_id, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return RecordErrorPage(
        items=[RecordErrorOut.build(r) for r in rows],
        next_cursor=str(rows[-1].id) if more else None,
    )


def _errors_csv(job_id: uuid.UUID) -> Iterator[str]:
    """CSV text in batches; its own session, since the request's closes before streaming."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(ERROR_COLUMNS)
    with sessions()() as session:
        for count, row in enumerate(jobs_query.iter_record_errors(session, job_id), start=1):
            writer.writerow(
                [getattr(row, c) if getattr(row, c) is not None else "" for c in ERROR_COLUMNS]
            )
            if count % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
