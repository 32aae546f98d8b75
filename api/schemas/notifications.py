"""Wire shapes of in-app notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from api.schemas import examples as ex
from api.schemas.common import RowOut, example


class NotificationOut(RowOut):
    model_config = example(
        {
            "id": "a7c9e1f3-2b4d-4f6a-8c0e-3d5f7a9b1c90",
            "domain_id": ex.DOMAIN_ID,
            "kind": "job.completed",
            "payload": {
                "job_id": ex.JOB_ID,
                "data_source_id": ex.SOURCE_ID,
                "status": "completed",
                "warnings": [],
            },
            "read_at": None,
            "created_at": ex.JOB_FINISHED_AT,
        }
    )

    id: uuid.UUID
    domain_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


class ReadAllOut(BaseModel):
    model_config = example({"marked": 3})

    #: how many notifications this call marked read
    marked: int
