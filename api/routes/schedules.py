"""`/schedules`: recurring scrapes (cron in a time zone, or a fixed interval).

Managers create, edit and delete schedules; members may `run-now` (it only creates a job on an
existing source, which they may do anyway). Each change sends `NOTIFY schedules` in its own
transaction (`models.schedules_repo`), so the scheduler reloads exactly the committed state.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from api import job_inputs
from api.audit import AuditedIdempotentRoute
from api.deps import ManagerDep, ReaderDep, SessionDep, WriterDep
from api.job_moves import enqueue_after_commit
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.jobs import JobOut
from api.schemas.schedules import ScheduleCreate, ScheduleOut, ScheduleUpdate, check_timing
from models import job_states, jobs_repo, schedules_repo
from models.schedules import Schedule
from runtime.errors import PermissionDenied

router = APIRouter(prefix="/schedules", tags=["schedules"], route_class=AuditedIdempotentRoute)

SORTABLE = {"created_at": Schedule.created_at}


def _validated(session: Session, domain_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    """Check a whole schedule (after merging a PATCH); returns it with params normalised."""
    check_timing(values)
    source = job_inputs.resolve_source(session, values["data_source_id"], domain_id)
    job_inputs.check_campaign(session, values.get("campaign_id"), domain_id)
    return {**values, "params": job_inputs.validate_params(session, source, values["params"])}


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, 404, 422))
def create_schedule(
    body: ScheduleCreate, session: SessionDep, principal: ManagerDep
) -> ScheduleOut:
    """Run jobs on a data source by cron (with a time zone) or every `interval_seconds`; `overlap`
    decides what happens while the previous run is still going."""
    values = _validated(session, principal.domain_id, body.model_dump())
    schedule = schedules_repo.create_schedule(
        session, domain_id=principal.domain_id, created_by=principal.user_id, values=values
    )
    return ScheduleOut.build(schedule)


@router.get("", responses=problem_responses(404, 422))
def list_schedules(
    session: SessionDep,
    principal: ReaderDep,
    page: PageParamsDep,
    data_source_id: uuid.UUID | None = None,
    include_deleted: Annotated[
        bool, Query(description="Also deleted schedules (managers)")
    ] = False,
) -> Page[ScheduleOut]:
    """The domain's schedules, a page at a time."""
    if include_deleted and not principal.has_role("manager"):
        raise PermissionDenied("listing deleted schedules requires the role manager")
    query = schedules_repo.list_schedules_query(
        principal.domain_id, data_source_id=data_source_id, include_deleted=include_deleted
    )
    rows = paginate(session, query, page, sortable=SORTABLE, id_column=Schedule.id)
    return rows.to_page([ScheduleOut.build(s) for s in rows.rows])


@router.get("/{schedule_id}", responses=problem_responses(404))
def get_schedule(schedule_id: uuid.UUID, session: SessionDep, principal: ReaderDep) -> ScheduleOut:
    """One schedule with its trigger and next fire time."""
    return ScheduleOut.build(schedules_repo.get_schedule(session, schedule_id, principal.domain_id))


@router.patch("/{schedule_id}", responses=problem_responses(403, 404, 422))
def update_schedule(
    schedule_id: uuid.UUID, body: ScheduleUpdate, session: SessionDep, principal: ManagerDep
) -> ScheduleOut:
    """Change a schedule; the scheduler picks the change up at once."""
    schedule = schedules_repo.get_schedule(session, schedule_id, principal.domain_id)
    merged = {**schedules_repo.schedule_values(schedule), **body.changes()}
    values = _validated(session, principal.domain_id, merged)
    return ScheduleOut.build(schedules_repo.update_schedule(session, schedule, values))


@router.delete(
    "/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
def delete_schedule(schedule_id: uuid.UUID, session: SessionDep, principal: ManagerDep) -> Response:
    """Delete a schedule: it fires no more (`POST .../restore` undoes it)."""
    schedules_repo.delete_schedule(session, schedule_id, principal.domain_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{schedule_id}/restore", responses=problem_responses(403, 404))
def restore_schedule(
    schedule_id: uuid.UUID, session: SessionDep, principal: ManagerDep
) -> ScheduleOut:
    """Bring a deleted schedule back; it fires from its next slot after now (missed slots are
    not made up). A schedule whose data source is deleted stays silent until that is restored."""
    return ScheduleOut.build(
        schedules_repo.restore_schedule(session, schedule_id, principal.domain_id)
    )


@router.post(
    "/{schedule_id}/run-now",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 422),
)
def run_schedule_now(schedule_id: uuid.UUID, session: SessionDep, principal: WriterDep) -> JobOut:
    """Create a job from the schedule now (outside its slots) and queue it."""
    schedule = schedules_repo.get_schedule(session, schedule_id, principal.domain_id)
    job_inputs.require_live_source(session, schedule.data_source_id, principal.domain_id)
    job = jobs_repo.create_job(
        session,
        domain_id=principal.domain_id,
        data_source_id=schedule.data_source_id,
        campaign_id=schedule.campaign_id,
        params=schedule.params,
        created_by=principal.user_id,
        schedule_id=schedule.id,
    )
    assert job is not None  # no slot_time: nothing to collide with
    enqueue_after_commit(session, job_states.start(session, job.id))
    return JobOut.build(jobs_repo.get_job(session, job.id, principal.domain_id))
