"""Outbound webhooks: a domain's endpoints, the messages owed to them (an outbox) and every
delivery attempt.

A message is one event for one endpoint; its id is the Standard Webhooks `webhook-id` (shown as
`msg_<hex>`), the same on every retry and redelivery so receivers can deduplicate. Its
`payload` is the exact body, built in the transaction that recorded the event, so a later change
to the job cannot alter what the event said. The signing secret is stored Fernet-encrypted
(`runtime.crypto`, the data-source credentials' key) and never leaves the API again after create.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import (
    Base,
    created_at,
    domain_fk,
    enum_check,
    updated_at,
    user_fk_nullable,
    uuid_pk,
)
from models.outbox import OUTBOX_STATUSES, OutboxColumns

#: events an endpoint may subscribe to (`ping` is sent only by `POST /webhooks/{id}/test`); the
#: API's schemas validate against it
WebhookEvent = Literal[
    "job.completed",
    "job.failed",
    "job.paused",
    "job.cancelled",
    "lead.assigned",
    "data_source.failing",
]
PING_EVENT = "ping"


def webhook_message_id(message_id: uuid.UUID) -> str:
    """A message's `webhook-id` header (`msg_<hex>`): the same on every retry and redelivery."""
    return f"msg_{message_id.hex}"


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = uuid_pk()
    domain_id: Mapped[uuid.UUID] = domain_fk()
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    description: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet token, never clear
    #: when the current run of failed attempts began (null: the last attempt succeeded)
    failing_since: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = user_fk_nullable()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class WebhookMessage(OutboxColumns, Base):
    """One event owed to one endpoint (the outbox row)."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        enum_check("status", OUTBOX_STATUSES),
        Index("ix_webhook_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    domain_id: Mapped[uuid.UUID] = domain_fk()
    webhook_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    #: retries stop one retry window after this (the event; a redelivery restarts it)
    retry_from: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


class WebhookDelivery(Base):
    """One attempt to deliver a message: what the endpoint answered, and how fast."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook_id_attempted_at", "webhook_id", "attempted_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    domain_id: Mapped[uuid.UUID] = domain_fk()
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    attempted_at: Mapped[datetime] = created_at()
