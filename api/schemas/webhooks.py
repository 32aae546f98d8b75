"""Wire shapes of outbound webhooks, their deliveries, and the events they carry.

The signing secret appears in exactly one response: the one that creates the endpoint.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import examples as ex
from api.schemas.common import example
from models.webhooks import Webhook, WebhookEvent, webhook_message_id

_URL = Field(
    min_length=1,
    max_length=2000,
    description="http(s) URL that receives the events; private addresses are refused "
    "unless DASHIN_SSRF_ALLOW allows them",
    examples=["https://crm.example.com/hooks/dashin"],
)


class WebhookCreate(BaseModel):
    model_config = example(
        {
            "url": "https://crm.example.com/hooks/dashin",
            "events": ["job.completed", "job.failed"],
            "description": "CRM import",
        }
    )
    url: str = _URL
    events: list[WebhookEvent] = Field(min_length=1, examples=[["job.completed", "job.failed"]])
    description: str | None = Field(None, max_length=200)
    enabled: bool = True


class WebhookUpdate(BaseModel):
    model_config = example({"enabled": False})
    url: str | None = Field(None, min_length=1, max_length=2000)
    events: list[WebhookEvent] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = None


_WEBHOOK_EXAMPLE = {
    "id": ex.WEBHOOK_ID,
    "url": "https://crm.example.com/hooks/dashin",
    "events": ["job.completed", "job.failed"],
    "description": "CRM import",
    "enabled": True,
    "failing_since": None,
    "disabled_reason": None,
    "created_at": ex.CREATED_AT,
    "updated_at": ex.CREATED_AT,
}
_MESSAGE_ID = "msg_3f8a1c5e7b9d4f2a8c6e0b1d3f5a7c9e"


class WebhookOut(BaseModel):
    model_config = example(_WEBHOOK_EXAMPLE)

    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    #: since when every attempt failed (null: the last attempt succeeded)
    failing_since: datetime | None
    #: why Dashin disabled the endpoint (null when enabled, or disabled by a manager)
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def build(cls, webhook: Webhook) -> WebhookOut:
        return cls.model_validate(webhook, from_attributes=True)


class WebhookCreated(WebhookOut):
    model_config = example({**_WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})

    secret: str = Field(
        description="The signing secret (`whsec_...`): shown only in this response",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class DeliveryOut(BaseModel):
    """One attempt to deliver one message."""

    model_config = example(
        {
            "id": "f6b8d0f2-1a3c-4e5f-8b7d-9c1e3a5b7d24",
            "message_id": _MESSAGE_ID,
            "event_type": "job.completed",
            "message_status": "done",
            "attempt": 1,
            "succeeded": True,
            "status_code": 204,
            "latency_ms": 182,
            "error": None,
            "attempted_at": "2026-11-02T09:16:43Z",
        }
    )

    id: uuid.UUID
    #: the `webhook-id` header: the same on every attempt of one message
    message_id: str
    event_type: str
    #: pending (will be tried again), done (delivered) or failed (given up)
    message_status: str
    attempt: int
    succeeded: bool
    status_code: int | None
    latency_ms: int
    error: str | None
    attempted_at: datetime

    @classmethod
    def build(cls, row: Any) -> DeliveryOut:
        return cls(
            id=row.id,
            message_id=webhook_message_id(row.message_id),
            event_type=row.event_type,
            message_status=row.message_status,
            attempt=row.attempt,
            succeeded=row.succeeded,
            status_code=row.status_code,
            latency_ms=row.latency_ms,
            error=row.error,
            attempted_at=row.attempted_at,
        )


class MessageQueued(BaseModel):
    """A message on its way (a ping, a redelivery): watch it in the deliveries list."""

    model_config = example({"message_id": _MESSAGE_ID, "status": "queued"})

    message_id: str
    status: Literal["queued"] = "queued"
