"""Webhook events: recorded in the transaction of the change that caused them, then settled
attempt by attempt by the `webhooks.deliver` actor.

`record_event` is called from the one place each change is written: the job state machine's
compare-and-set (`job.completed`, `job.failed`, `job.paused`, `job.cancelled`), the data-source
metrics of a failed job (`data_source.failing`, once per run of failures), and lead assignment
(`lead.assigned`). It costs one indexed query when no endpoint of the domain listens; the
payload (`data`) is only built when one does. The body follows the Standard Webhooks shape:
`{"type", "timestamp", "data"}`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from models import outbox
from models.jobs import Job
from models.jobs_repo import counters
from models.notifications_repo import domain_managers, notify_users
from models.webhooks import (
    PING_EVENT,
    Webhook,
    WebhookDelivery,
    WebhookMessage,
    webhook_message_id,
)

EventData = Callable[[], dict[str, Any]]


def record_event(
    session: Session,
    domain_id: uuid.UUID,
    event_type: str,
    data: EventData,
    *,
    webhook_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """One message per enabled endpoint of the domain subscribed to `event_type` (or for the
    one `webhook_id`, whatever it subscribes to: a ping); rung for delivery after commit."""
    query = select(Webhook.id).where(Webhook.domain_id == domain_id)
    if webhook_id is not None:
        query = query.where(Webhook.id == webhook_id)
    else:
        query = query.where(Webhook.enabled.is_(True), Webhook.events.contains([event_type]))
    endpoints = list(session.scalars(query))
    if not endpoints:
        return []
    payload = {
        "type": event_type,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": to_jsonable_python(data()),
    }
    ids = list(
        session.scalars(
            insert(WebhookMessage)
            .values(
                [
                    {
                        "domain_id": domain_id,
                        "webhook_id": endpoint,
                        "event_type": event_type,
                        "payload": payload,
                    }
                    for endpoint in endpoints
                ]
            )
            .returning(WebhookMessage.id)
        )
    )
    for message_id in ids:
        outbox.ring(session, "webhook", message_id)
    return ids


def job_data(session: Session, job_id: uuid.UUID) -> dict[str, Any]:
    """The job as `GET /jobs/{id}` shows it (`api.schemas.jobs.JobOut`; a test keeps the two
    equal), read fresh: the move that caused the event updated the row with Core."""
    job = session.execute(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    ).scalar_one()
    age = None
    if job.heartbeat_at is not None:
        age = round(max(0.0, (datetime.now(UTC) - job.heartbeat_at).total_seconds()), 3)
    return {
        "id": job.id,
        "domain_id": job.domain_id,
        "data_source_id": job.data_source_id,
        "campaign_id": job.campaign_id,
        "schedule_id": job.schedule_id,
        "slot_time": job.slot_time,
        "queue": job.queue,
        "status": job.status,
        "pause_reason": job.pause_reason,
        "resume_at": job.resume_at,
        "attempts": job.attempts,
        "params": job.params,
        "counters": counters(job),
        "progress": {
            "done": job.progress_done,
            "total": job.progress_total,
            "missed": job.progress_missed,
        },
        "credits_used": job.credits_used,
        "error": job.error,
        "error_code": job.error_code,
        "warnings": job.warnings,
        "checkpoint": job.checkpoint,
        "created_by": job.created_by,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "heartbeat_at": job.heartbeat_at,
        "heartbeat_age_s": age,
    }


def ping(session: Session, domain_id: uuid.UUID, webhook_id: uuid.UUID) -> uuid.UUID:
    """Queue a `ping` to one endpoint (`POST /webhooks/{id}/test`)."""
    (message_id,) = record_event(
        session,
        domain_id,
        PING_EVENT,
        lambda: {"webhook_id": str(webhook_id), "message": "ping from Dashin"},
        webhook_id=webhook_id,
    )
    return message_id


# ---- the delivery side (the `webhooks.deliver` actor) ----------------------------------------


@dataclass(frozen=True)
class ClaimedMessage:
    id: uuid.UUID
    webhook_id: uuid.UUID
    domain_id: uuid.UUID
    attempt: int
    event_type: str
    body: str
    url: str
    secret: bytes  # the endpoint's Fernet-encrypted signing secret
    endpoint_enabled: bool
    retry_from: datetime

    @property
    def webhook_message_id(self) -> str:
        return webhook_message_id(self.id)


def claim_message(session: Session, message_id: uuid.UUID, hold_s: float) -> ClaimedMessage | None:
    attempt = outbox.claim(session, WebhookMessage, message_id, hold_s)
    if attempt is None:
        return None
    row = session.execute(
        select(
            WebhookMessage.webhook_id,
            WebhookMessage.domain_id,
            WebhookMessage.event_type,
            WebhookMessage.payload,
            WebhookMessage.retry_from,
            Webhook.url,
            Webhook.secret,
            Webhook.enabled,
        )
        .join(Webhook, Webhook.id == WebhookMessage.webhook_id)
        .where(WebhookMessage.id == message_id)
    ).one()
    payload = row.payload
    body = json.dumps(
        {"type": payload["type"], "timestamp": payload["timestamp"], "data": payload["data"]},
        separators=(",", ":"),
    )
    return ClaimedMessage(
        id=message_id,
        webhook_id=row.webhook_id,
        domain_id=row.domain_id,
        attempt=attempt,
        event_type=row.event_type,
        body=body,
        url=row.url,
        secret=bytes(row.secret),
        endpoint_enabled=row.enabled or row.event_type == PING_EVENT,
        retry_from=row.retry_from,
    )


@dataclass(frozen=True)
class Attempt:
    succeeded: bool
    status_code: int | None
    latency_ms: int
    error: str | None


def settle_attempt(
    session: Session,
    claimed: ClaimedMessage,
    attempt: Attempt,
    *,
    retry_in_s: float | None,
    disable_after_s: float,
) -> bool:
    """Keep the attempt, settle the message, track the endpoint's health. True when this
    failure disabled the endpoint (every attempt failed for `disable_after_s`)."""
    session.execute(
        insert(WebhookDelivery).values(
            domain_id=claimed.domain_id,
            webhook_id=claimed.webhook_id,
            message_id=claimed.id,
            attempt=claimed.attempt,
            succeeded=attempt.succeeded,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
        )
    )
    endpoint = update(Webhook).where(Webhook.id == claimed.webhook_id)
    if attempt.succeeded:
        outbox.succeed(session, WebhookMessage, claimed.id, delivered_at=func.now())
        session.execute(endpoint.values(failing_since=None))
        return False
    error = attempt.error or "failed"
    outbox.fail(session, WebhookMessage, claimed.id, error, retry_in_s)
    failing_since = session.scalar(
        endpoint.values(failing_since=func.coalesce(Webhook.failing_since, func.now())).returning(
            Webhook.failing_since
        )
    )
    if failing_since is None or claimed.event_type == PING_EVENT:
        return False
    cutoff = datetime.now(UTC) - timedelta(seconds=disable_after_s)
    if failing_since > cutoff:
        return False
    reason = f"every delivery failed since {failing_since.isoformat()} (last: {error})"
    disabled = session.scalar(
        update(Webhook)
        .where(Webhook.id == claimed.webhook_id, Webhook.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason)
        .returning(Webhook.url)
    )
    if disabled is None:
        return False
    notify_users(
        session,
        claimed.domain_id,
        domain_managers(session, claimed.domain_id),
        "webhook.disabled",
        {"webhook_id": str(claimed.webhook_id), "url": disabled, "reason": reason},
    )
    return True


def give_up(session: Session, claimed: ClaimedMessage, reason: str) -> None:
    """Settle a message that will not be sent (its endpoint was disabled meanwhile)."""
    outbox.fail(session, WebhookMessage, claimed.id, reason, None)


def due_messages(session: Session, grace_s: float) -> list[uuid.UUID]:
    return outbox.due(session, WebhookMessage, grace_s)


# ---- the events of job moves and of the data sources they run --------------------------------

#: job statuses whose arrival is an event (`job.<status>`)
JOB_EVENT_STATUSES = frozenset({"completed", "failed", "cancelled", "paused"})


def job_moved(
    session: Session,
    domain_id: uuid.UUID,
    job_id: uuid.UUID,
    data_source_id: uuid.UUID,
    status: str,
) -> None:
    """Called by every job move (`models.job_states._cas`) in its transaction.

    A failed job whose source had no error recorded yet (its last run succeeded, or this was
    its first) also reports `data_source.failing`: once per run of failures, not per job. The
    caller updates the source's `last_error` after this.
    """
    if status not in JOB_EVENT_STATUSES:
        return
    record_event(session, domain_id, f"job.{status}", lambda: job_data(session, job_id))
    if status == "failed":
        _source_failing(session, domain_id, job_id, data_source_id)


def _source_failing(
    session: Session, domain_id: uuid.UUID, job_id: uuid.UUID, data_source_id: uuid.UUID
) -> None:
    from models.sources import DataSource

    source = session.execute(
        select(DataSource.name, DataSource.type, DataSource.last_error, Job.error)
        .join(Job, Job.data_source_id == DataSource.id)
        .where(DataSource.id == data_source_id, Job.id == job_id)
    ).one_or_none()
    if source is None or source.last_error is not None:
        return
    record_event(
        session,
        domain_id,
        "data_source.failing",
        lambda: {
            "id": data_source_id,
            "name": source.name,
            "type": source.type,
            "job_id": job_id,
            "error": source.error,
        },
    )
