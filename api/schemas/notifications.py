"""Wire shapes of in-app notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from models.notifications import Notification


class NotificationOut(BaseModel):
    id: uuid.UUID
    domain_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    read_at: datetime | None
    created_at: datetime

    @classmethod
    def build(cls, note: Notification) -> NotificationOut:
        return cls(
            id=note.id,
            domain_id=note.domain_id,
            kind=note.kind,
            payload=note.payload,
            read_at=note.read_at,
            created_at=note.created_at,
        )


class ReadAllOut(BaseModel):
    #: how many notifications this call marked read
    marked: int
