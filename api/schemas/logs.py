"""Wire shapes of job log lines (ARCHITECTURE §9): `seq` orders them and is the SSE event id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from models.jobs import JobLog

LogLevel = Literal["debug", "info", "warning", "error"]


class LogLineOut(BaseModel):
    seq: int
    job_id: uuid.UUID
    ts: datetime
    level: str
    event: str
    message: str
    fields: dict[str, Any]

    @classmethod
    def build(cls, line: JobLog) -> LogLineOut:
        return cls(
            seq=line.seq,
            job_id=line.job_id,
            ts=line.ts,
            level=line.level,
            event=line.event,
            message=line.message,
            fields=line.fields,
        )


class LogPage(BaseModel):
    items: list[LogLineOut]
    #: pass back as `after_seq` to continue; equals the request's `after_seq` when nothing is new
    next_after_seq: int
