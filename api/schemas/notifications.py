"""Wire shapes of in-app notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from api.schemas.common import RowOut


class NotificationOut(RowOut):
    id: uuid.UUID
    domain_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


class ReadAllOut(BaseModel):
    #: how many notifications this call marked read
    marked: int
