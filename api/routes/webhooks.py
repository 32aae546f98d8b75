"""`/webhooks`: a domain's outbound webhook endpoints, their deliveries, tests and redeliveries.

Managers only (ARCHITECTURE §7); another domain's endpoint answers 404. The URL passes the
connectors' SSRF guard when it is set (and again at every connection, against DNS rebinding).
Events, payloads and signature verification are documented in docs/api.md.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from api.audit import AuditedIdempotentRoute
from api.deps import ManagerDep, SessionDep, SettingsDep
from api.pagination import Page, PageParamsDep, paginate, paginate_rows
from api.problems import problem_responses
from api.schemas.webhooks import (
    DeliveryOut,
    MessageQueued,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)
from connectors.errors import ConfigError
from connectors.kit.ssrf import check_url
from models import webhook_events, webhooks_repo
from models.webhooks import Webhook, WebhookDelivery, webhook_message_id
from runtime.errors import FieldError, ValidationFailed
from runtime.settings import Settings

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=AuditedIdempotentRoute)


def _checked_url(url: str, settings: Settings) -> str:
    try:
        check_url(url, settings.ssrf_allow)
    except ConfigError as exc:
        raise ValidationFailed(
            exc.message, [FieldError("url", "url_refused", exc.message)]
        ) from None
    return url


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, 422))
def create_webhook(
    body: WebhookCreate, session: SessionDep, settings: SettingsDep, principal: ManagerDep
) -> WebhookCreated:
    """Register an endpoint; the response carries its signing secret, shown only this once."""
    created = webhooks_repo.create_webhook(
        session,
        domain_id=principal.domain_id,
        url=_checked_url(body.url, settings),
        events=list(body.events),
        description=body.description,
        enabled=body.enabled,
        created_by=principal.user_id,
        secret_key=settings.require_secret_key(),
    )
    return WebhookCreated(**WebhookOut.build(created.webhook).model_dump(), secret=created.secret)


@router.get("", responses=problem_responses(403, 422))
def list_webhooks(
    session: SessionDep, principal: ManagerDep, page: PageParamsDep
) -> Page[WebhookOut]:
    """The domain's webhook endpoints (managers only); secrets are never shown again."""
    rows = paginate(
        session,
        webhooks_repo.webhooks_query(principal.domain_id),
        page,
        sortable={"created_at": Webhook.created_at},
        id_column=Webhook.id,
    )
    return rows.to_page([WebhookOut.build(w) for w in rows.rows])


@router.get("/{webhook_id}", responses=problem_responses(403, 404))
def get_webhook(webhook_id: uuid.UUID, session: SessionDep, principal: ManagerDep) -> WebhookOut:
    """One endpoint: URL, events, enabled, and how its deliveries are going (no secret)."""
    return WebhookOut.build(webhooks_repo.get_webhook(session, webhook_id, principal.domain_id))


@router.patch("/{webhook_id}", responses=problem_responses(403, 404, 422))
def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    session: SessionDep,
    settings: SettingsDep,
    principal: ManagerDep,
) -> WebhookOut:
    """Change the URL, events, description or `enabled` (enabling clears the failure record)."""
    webhook = webhooks_repo.get_webhook(session, webhook_id, principal.domain_id)
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "events", "enabled"):
        if name in changes and changes[name] is None:
            message = f"{name} cannot be null"
            raise ValidationFailed(message, [FieldError(name, "null", message)])
    if "url" in changes:
        _checked_url(changes["url"], settings)
    return WebhookOut.build(webhooks_repo.update_webhook(session, webhook, changes))


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404)
)
def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, principal: ManagerDep) -> None:
    """Remove the endpoint with its pending messages and delivery history."""
    webhooks_repo.delete_webhook(session, webhook_id, principal.domain_id)


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(403, 404),
)
def test_webhook(
    webhook_id: uuid.UUID, session: SessionDep, principal: ManagerDep
) -> MessageQueued:
    """Send a signed `ping` event to the endpoint (even a disabled one)."""
    webhooks_repo.get_webhook(session, webhook_id, principal.domain_id)
    message_id = webhook_events.ping(session, principal.domain_id, webhook_id)
    return MessageQueued(message_id=webhook_message_id(message_id))


@router.get("/{webhook_id}/deliveries", responses=problem_responses(403, 404, 422))
def list_deliveries(
    webhook_id: uuid.UUID, session: SessionDep, principal: ManagerDep, page: PageParamsDep
) -> Page[DeliveryOut]:
    """Every delivery attempt, newest first: status code, latency and error of each."""
    webhooks_repo.get_webhook(session, webhook_id, principal.domain_id)
    rows = paginate_rows(
        session,
        webhooks_repo.deliveries_query(webhook_id),
        page,
        sortable={"attempted_at": WebhookDelivery.attempted_at},
        id_column=WebhookDelivery.id,
        default_sort="-attempted_at",
    )
    return rows.to_page([DeliveryOut.build(r) for r in rows.rows])


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(403, 404),
)
def redeliver(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, principal: ManagerDep
) -> MessageQueued:
    """Send that delivery's message again, with the same `webhook-id` and a new retry window."""
    webhooks_repo.get_webhook(session, webhook_id, principal.domain_id)
    message_id = webhooks_repo.redeliver(session, webhook_id, delivery_id, principal.domain_id)
    return MessageQueued(message_id=webhook_message_id(message_id))
