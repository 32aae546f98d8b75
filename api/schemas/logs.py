"""Wire shapes of job log lines (ARCHITECTURE §9): `seq` orders them and is the SSE event id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from api.schemas import examples as ex
from api.schemas.common import RowOut, example

LogLevel = Literal["debug", "info", "warning", "error"]


_LINE_EXAMPLE = {
    "seq": 5,
    "job_id": ex.JOB_ID,
    "ts": "2026-11-02T09:14:21Z",
    "level": "info",
    "event": "page.committed",
    "message": "page committed: 50 fetched, 47 new, 2 updated, 0 unchanged, 1 rejected",
    "fields": {
        "pages": 1,
        "fetched": 50,
        "inserted": 47,
        "updated": 2,
        "unchanged": 0,
        "rejected": 1,
    },
}


class LogLineOut(RowOut):
    model_config = example(_LINE_EXAMPLE)

    seq: int
    job_id: uuid.UUID
    ts: datetime
    level: str
    event: str
    message: str
    fields: dict[str, Any]


class LogPage(BaseModel):
    model_config = example({"items": [_LINE_EXAMPLE], "next_after_seq": 5})

    items: list[LogLineOut]
    #: pass back as `after_seq` to continue; equals the request's `after_seq` when nothing is new
    next_after_seq: int
