"""`/console/jobs`: the jobs table, one job's page, and the buttons that move jobs.

Every read and move calls the API's own route functions (`api.routes.jobs`) with the console
user's `Principal`, so domain scoping, validation, enqueue-after-commit and the 409 messages are
the API's, not a copy. The page stays live from `/api/v1/events` (see `static/console.js`).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.console.auth import ConsoleUser, ConsoleUserDep, WriterUserDep
from api.console.templating import flash, page, refused
from api.deps import SessionDep
from api.pagination import PageParams
from api.routes import jobs as jobs_api
from api.routes import logs as logs_api
from api.schemas.jobs import JobCreate, JobOut
from api.schemas.logs import LogLineOut
from models import sources_repo
from models.job_statuses import JOB_STATUSES, MOVES, TERMINAL_STATUSES, USER_MOVES, moves_from
from models.jobs import COUNTERS, LOG_LEVELS
from runtime.errors import DashinError, ValidationFailed

router = APIRouter(prefix="/jobs")

Action = Literal["start", "pause", "resume", "cancel"]
#: which button a job shows in which status: the `from` statuses of the user moves, read off the
#: declaration (models.job_statuses); tests/api/test_console.py checks the moves agree
ACTIONS_FROM: dict[str, tuple[str, ...]] = {name: MOVES[name].sources for name in USER_MOVES}
_MOVES = {
    "start": jobs_api.start_job,
    "pause": jobs_api.pause_job,
    "resume": jobs_api.resume_job,
    "cancel": jobs_api.cancel_job,
}
PAGE_SIZE = 50


def actions_for(status: str) -> list[str]:
    return moves_from(status)


def _source_names(session: Session, domain_id: uuid.UUID) -> dict[uuid.UUID, str]:
    return {
        s.id: s.name
        for s in session.scalars(sources_repo.list_sources_query(domain_id, include_deleted=True))
    }


def _job_context(session: Session, user: ConsoleUser) -> dict[str, Any]:
    return {
        "sources": _source_names(session, user.principal.domain_id),
        "actions_for": actions_for,
        "counters": COUNTERS,
        "terminal": TERMINAL_STATUSES,
    }


@router.get("", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    status: Annotated[str, Query()] = "",
    data_source_id: Annotated[str, Query()] = "",
    cursor: str | None = None,
) -> HTMLResponse:
    statuses = [status] if status in JOB_STATUSES else None
    source = _uuid_or_none(data_source_id)
    listed = jobs_api.list_jobs(
        session,
        user.principal,
        PageParams(cursor=cursor, page_size=PAGE_SIZE, sort="-created_at", count=False),
        status=statuses,  # checked against JOB_STATUSES above
        data_source_id=source,
    )
    template = "_job_rows.html" if request.headers.get("HX-Request") else "jobs.html"
    return page(
        request,
        template,
        user,
        nav="jobs",
        jobs=listed.items,
        next_cursor=listed.next_cursor,
        statuses=JOB_STATUSES,
        status=status,
        data_source_id=str(source) if source else "",
        **_job_context(session, user),
    )


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


@router.post("", response_class=HTMLResponse)
def create_job(
    request: Request,
    session: SessionDep,
    user: WriterUserDep,
    data_source_id: Annotated[uuid.UUID, Form()],
    params: Annotated[str, Form()] = "",
) -> Response:
    """Create a job and start it at once (the API's `POST /jobs` with `start: true`)."""
    try:
        parsed = json.loads(params) if params.strip() else {}
        if not isinstance(parsed, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        message = "params must be a JSON object"
        raise ValidationFailed(message) from exc
    try:
        job = jobs_api.create_job(
            JobCreate(data_source_id=data_source_id, params=parsed, start=True),
            session,
            user.principal,
        )
    except DashinError as exc:
        return refused(request, exc)
    assert not isinstance(job, JSONResponse)  # no estimate was asked for
    if not request.headers.get("HX-Request"):
        return RedirectResponse(f"/console/jobs/{job.id}", status_code=303)
    return flash(request, 201, f"Job {job.id} started.", job_id=str(job.id))


@router.get("/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request, job_id: uuid.UUID, session: SessionDep, user: ConsoleUserDep
) -> HTMLResponse:
    job = jobs_api.get_job(job_id, session, user.principal)  # another domain's job: 404
    errors = jobs_api.list_job_errors(job_id, session, user.principal, limit=20)
    return page(
        request,
        "job.html",
        user,
        nav="jobs",
        job=job,
        errors=getattr(errors, "items", []),
        timeline=_timeline(session, user, job_id),
        levels=LOG_LEVELS,
        **_job_context(session, user),
    )


def _timeline(session: Session, user: ConsoleUser, job_id: uuid.UUID) -> list[LogLineOut]:
    """The job's moves: every move writes a `job.<move>` log line (models.job_states)."""
    lines = logs_api.list_logs(job_id, session, user.principal, limit=1000)
    return [line for line in lines.items if line.event.startswith("job.")]


@router.get("/{job_id}/row", response_class=HTMLResponse)
def job_row(
    request: Request, job_id: uuid.UUID, session: SessionDep, user: ConsoleUserDep
) -> HTMLResponse:
    """One table row, re-read when the status stream rings for this job."""
    job = jobs_api.get_job(job_id, session, user.principal)
    return page(request, "_job_row.html", user, job=job, **_job_context(session, user))


@router.get("/{job_id}/summary", response_class=HTMLResponse)
def job_summary(
    request: Request, job_id: uuid.UUID, session: SessionDep, user: ConsoleUserDep
) -> HTMLResponse:
    """The job page's header, counters and buttons, re-read on each status change."""
    job = jobs_api.get_job(job_id, session, user.principal)
    timeline = _timeline(session, user, job_id)
    context = _job_context(session, user)
    return page(request, "_job_summary.html", user, job=job, timeline=timeline, **context)


@router.get("/{job_id}/errors.csv")
def job_errors_csv(job_id: uuid.UUID, session: SessionDep, user: ConsoleUserDep) -> Response:
    response = jobs_api.list_job_errors(job_id, session, user.principal, format="csv")
    assert isinstance(response, Response)
    return response


@router.post("/{job_id}/{action}", response_class=HTMLResponse)
def move_job(
    request: Request, job_id: uuid.UUID, action: Action, session: SessionDep, user: WriterUserDep
) -> Response:
    """A button: the API's move, and its answer (202, or its 409 message) as a notice."""
    try:
        job: JobOut = _MOVES[action](job_id, session, user.principal)
    except DashinError as exc:
        return refused(request, exc, str(job_id))
    if not request.headers.get("HX-Request"):
        return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)
    return flash(request, 202, f"{action.capitalize()}: the job is {job.status}.", str(job_id))
