"""Webhook endpoints of a domain: create, read, change, delete; their deliveries; redelivery.

Every function takes the domain and filters by it, so another domain's endpoint is simply not
found. The signing secret is generated here (`whsec_` + base64 of 24 random bytes, the Standard
Webhooks format), encrypted before it is stored, and returned by `create_webhook` only.
Functions flush and never commit: the edge owns the transaction.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from models import outbox
from models.base import found
from models.webhooks import Webhook, WebhookDelivery, WebhookMessage
from runtime.crypto import encrypt_json
from runtime.errors import NotFound

SECRET_PREFIX = "whsec_"


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str  # shown once, in the create response


def create_webhook(
    session: Session,
    *,
    domain_id: uuid.UUID,
    url: str,
    events: list[str],
    description: str | None,
    enabled: bool,
    created_by: uuid.UUID | None,
    secret_key: str,
) -> CreatedWebhook:
    secret = new_signing_secret()
    webhook = Webhook(
        domain_id=domain_id,
        url=url,
        events=sorted(set(events)),
        description=description,
        enabled=enabled,
        secret=encrypt_json(secret_key, {"secret": secret}),
        created_by=created_by,
    )
    session.add(webhook)
    session.flush()
    session.refresh(webhook)
    return CreatedWebhook(webhook, secret)


def webhooks_query(domain_id: uuid.UUID) -> Select[Webhook]:
    return select(Webhook).where(Webhook.domain_id == domain_id)


def get_webhook(session: Session, webhook_id: uuid.UUID, domain_id: uuid.UUID) -> Webhook:
    return found(
        session.scalar(
            select(Webhook).where(Webhook.id == webhook_id, Webhook.domain_id == domain_id)
        ),
        "webhook",
        webhook_id,
    )


def update_webhook(session: Session, webhook: Webhook, changes: dict[str, Any]) -> Webhook:
    """Apply the given fields; enabling an endpoint again clears its failure record."""
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    if changes.get("enabled") is True:
        changes.update(failing_since=None, disabled_reason=None)
    for name, value in changes.items():
        setattr(webhook, name, value)
    session.flush()
    session.refresh(webhook)
    return webhook


def delete_webhook(session: Session, webhook_id: uuid.UUID, domain_id: uuid.UUID) -> None:
    get_webhook(session, webhook_id, domain_id)
    session.execute(delete(Webhook).where(Webhook.id == webhook_id))


def deliveries_query(webhook_id: uuid.UUID) -> Select[*tuple[Any, ...]]:
    """Attempts with their message's event type, for the deliveries list (plain rows)."""
    return (
        select(
            WebhookDelivery.id,
            WebhookDelivery.message_id,
            WebhookMessage.event_type,
            WebhookMessage.status.label("message_status"),
            WebhookDelivery.attempt,
            WebhookDelivery.succeeded,
            WebhookDelivery.status_code,
            WebhookDelivery.latency_ms,
            WebhookDelivery.error,
            WebhookDelivery.attempted_at,
        )
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.webhook_id == webhook_id)
    )


def redeliver(
    session: Session, webhook_id: uuid.UUID, delivery_id: uuid.UUID, domain_id: uuid.UUID
) -> uuid.UUID:
    """Send a delivery's message again (same `webhook-id`), with a fresh retry window."""
    message_id = session.scalar(
        select(WebhookDelivery.message_id).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.domain_id == domain_id,
        )
    )
    if message_id is None:
        raise NotFound(f"delivery {delivery_id} not found")
    session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.id == message_id)
        .values(status="pending", next_attempt_at=func.now(), retry_from=func.now())
    )
    outbox.ring(session, "webhook", message_id)
    return message_id
