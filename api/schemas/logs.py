"""Wire shapes of job log lines (ARCHITECTURE §9): `seq` orders them and is the SSE event id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from api.schemas.common import RowOut

LogLevel = Literal["debug", "info", "warning", "error"]


class LogLineOut(RowOut):
    seq: int
    job_id: uuid.UUID
    ts: datetime
    level: str
    event: str
    message: str
    fields: dict[str, Any]


class LogPage(BaseModel):
    items: list[LogLineOut]
    #: pass back as `after_seq` to continue; equals the request's `after_seq` when nothing is new
    next_after_seq: int
