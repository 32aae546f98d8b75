"""Wire shapes of jobs and their row errors (ARCHITECTURE §9).

Counters, progress and the heartbeat age are presented as small objects so a client can render
a job without knowing which columns the runner updates.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, create_model

from api.schemas.common import JsonObject, RowOut, example, from_row
from models.jobs import COUNTERS, Job
from models.jobs_repo import counters


class JobCreate(BaseModel):
    model_config = example(
        {
            "data_source_id": "5f0c1d2e-8a7b-4c3d-9e8f-1a2b3c4d5e6f",
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

    data_source_id: uuid.UUID
    #: matches of the search (None: this kind of source cannot count without reading it all)
    matches: int | None
    #: the most credits the job could spend: one per match when the source enriches, capped by
    #: `max_credits` and the source's budgets (people without an email cost nothing)
    credits: int
    #: what the source's budgets leave for a new job (None: no budget)
    budget_left: int | None


if TYPE_CHECKING:
    JobCounters = BaseModel
else:
    #: one int per job counter, derived from the table's own list (`models.jobs.COUNTERS`)
    JobCounters = create_model("JobCounters", **{name: (int, ...) for name in COUNTERS})


class JobProgress(BaseModel):
    done: int
    total: int | None
    #: matches the search could not reach (a capped search's remainder no partition fetches)
    missed: int = 0


class JobWarning(BaseModel):
    """Something a completed job did not do: `records_rejected`, `matches_missed`."""

    code: str
    count: int
    message: str


class JobOut(BaseModel):
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


class RecordErrorOut(RowOut):
    id: int
    record: int | None
    line: int | None
    field: str | None
    code: str
    message: str
    raw: str | None


class RecordErrorPage(BaseModel):
    items: list[RecordErrorOut]
    #: pass as `after_id` for the next page; null on the last one
    next_cursor: str | None
