"""Wire shapes of jobs and their row errors (ARCHITECTURE §9).

Counters, progress and the heartbeat age are presented as small objects so a client can render
a job without knowing which columns the runner updates.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, create_model

from api.schemas import examples as ex
from api.schemas.common import JsonObject, RowOut, example, from_row
from models.jobs import COUNTERS, Job
from models.jobs_repo import counters


class JobCreate(BaseModel):
    model_config = example(
        {
            "data_source_id": ex.SOURCE_ID,
            "campaign_id": None,
            "params": {"titles": ["CFO"], "limit": 500},
            "start": True,
        }
    )
    data_source_id: uuid.UUID
    campaign_id: uuid.UUID | None = None
    #: the connector's Params (search filters, file_id, ...)
    params: JsonObject = Field(default_factory=dict)
    #: queue the job at once instead of leaving it pending
    start: bool = False
    #: a dry run: create nothing, answer the matches and the credits the job would spend
    estimate: bool = False


class JobEstimateOut(BaseModel):
    """`POST /jobs` with `"estimate": true`: nothing was created or spent."""

    model_config = example(
        {"data_source_id": ex.SOURCE_ID, "matches": 1840, "credits": 500, "budget_left": 4500}
    )
    data_source_id: uuid.UUID
    #: matches of the search (None: this kind of source cannot count without reading it all)
    matches: int | None
    #: the most credits the job could spend: one per match when the source enriches, capped by
    #: `max_credits` and the source's budgets (people without an email cost nothing)
    credits: int
    #: what the source's budgets leave for a new job (None: no budget)
    budget_left: int | None


#: a run of 10 pages: fetched = inserted + updated + unchanged + rejected
_COUNTERS_EXAMPLE = {
    "pages": 10,
    "fetched": 500,
    "inserted": 468,
    "updated": 21,
    "unchanged": 4,
    "rejected": 7,
}
_PROGRESS_EXAMPLE = {"done": 500, "total": 500, "missed": 0}
_ERROR_MESSAGE = "record has neither a valid email, a LinkedIn profile URL nor an id"
_WARNING_EXAMPLE = {
    "code": "records_rejected",
    "count": 7,
    "message": "7 of 500 fetched records were rejected; commonest reason: no_identity (7), "
    f"e.g. record 41: {_ERROR_MESSAGE} (all of them: GET /jobs/{ex.JOB_ID}/errors)",
}

if TYPE_CHECKING:
    JobCounters = BaseModel
else:
    #: one int per job counter, derived from the table's own list (`models.jobs.COUNTERS`)
    JobCounters = create_model(
        "JobCounters",
        __config__=example(_COUNTERS_EXAMPLE),
        **{name: (int, ...) for name in COUNTERS},
    )


class JobProgress(BaseModel):
    model_config = example(_PROGRESS_EXAMPLE)

    done: int
    total: int | None
    #: matches the search could not reach (a capped search's remainder no partition fetches)
    missed: int = 0


class JobWarning(BaseModel):
    """Something a completed job did not do: `records_rejected`, `matches_missed`."""

    model_config = example(_WARNING_EXAMPLE)

    code: str
    count: int
    message: str


class JobOut(BaseModel):
    model_config = example(
        {
            "id": ex.JOB_ID,
            "domain_id": ex.DOMAIN_ID,
            "data_source_id": ex.SOURCE_ID,
            "campaign_id": ex.CAMPAIGN_ID,
            "schedule_id": None,
            "slot_time": None,
            "queue": "apollo",
            "status": "completed",
            "pause_reason": None,
            "resume_at": None,
            "attempts": 1,
            "params": {"titles": ["CFO"], "limit": 500},
            "counters": _COUNTERS_EXAMPLE,
            "progress": _PROGRESS_EXAMPLE,
            "credits_used": 468,
            "error": None,
            "error_code": None,
            "warnings": [_WARNING_EXAMPLE],
            "checkpoint": None,
            "created_by": ex.USER_ID,
            "created_at": ex.CREATED_AT,
            "started_at": ex.JOB_STARTED_AT,
            "finished_at": ex.JOB_FINISHED_AT,
            "heartbeat_at": ex.JOB_FINISHED_AT,
            "heartbeat_age_s": 2.417,
        }
    )

    id: uuid.UUID
    domain_id: uuid.UUID
    data_source_id: uuid.UUID
    campaign_id: uuid.UUID | None
    schedule_id: uuid.UUID | None
    slot_time: datetime | None
    queue: str
    status: str
    pause_reason: str | None
    resume_at: datetime | None
    attempts: int
    params: dict[str, Any]
    counters: JobCounters
    progress: JobProgress
    credits_used: int
    #: why a failed job failed, readable (`<code>: <message>` for most failures)
    error: str | None
    #: the failure's code: `all_records_rejected`, `too_many_attempts`, `page_timeout`,
    #: `internal_error`, or the connector error's (`bad_credentials`, `forbidden`,
    #: `bad_config`, `response_too_large`, `transient`, ...)
    error_code: str | None
    #: what a completed job did not do (empty otherwise)
    warnings: list[JobWarning]
    checkpoint: dict[str, Any] | None
    created_by: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    #: seconds since the runner last proved it is alive (null before the first heartbeat)
    heartbeat_age_s: float | None

    @classmethod
    def build(cls, job: Job, now: datetime | None = None) -> JobOut:
        now = now or datetime.now(UTC)
        age = None
        if job.heartbeat_at is not None:
            age = round(max(0.0, (now - job.heartbeat_at).total_seconds()), 3)
        return from_row(
            cls,
            job,
            counters=JobCounters(**counters(job)),
            progress=JobProgress(
                done=job.progress_done, total=job.progress_total, missed=job.progress_missed
            ),
            warnings=[JobWarning(**w) for w in job.warnings],
            heartbeat_age_s=age,
        )


_RECORD_ERROR_EXAMPLE = {
    "id": 9127,
    "record": 41,
    "line": None,
    "field": None,
    "code": "no_identity",
    "message": _ERROR_MESSAGE,
    "raw": '{"first_name": "Lin", "last_name": "Chen", "title": "Head of Finance"}',
}


class RecordErrorOut(RowOut):
    model_config = example(_RECORD_ERROR_EXAMPLE)

    id: int
    record: int | None
    line: int | None
    field: str | None
    code: str
    message: str
    raw: str | None


class RecordErrorPage(BaseModel):
    model_config = example({"items": [_RECORD_ERROR_EXAMPLE], "next_cursor": "9127"})

    items: list[RecordErrorOut]
    #: pass as `after_id` for the next page; null on the last one
    next_cursor: str | None
