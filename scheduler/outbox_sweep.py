"""The outbox sweep: enqueue webhook messages and mails whose doorbell was lost.

An outbox row is enqueued right after the commit that wrote it, and a retry is a delayed
message; either can be lost (Redis flushed, the API process died between commit and enqueue, a
worker killed mid-attempt). A row that stays pending and due for `queued_grace_s` without
being claimed is enqueued again here; a duplicate message is harmless (the claim is a
compare-and-set). Runs with the reaper, on the scheduler leader and in `dashin reap`.

Settled rows (delivered or given up) are deleted after `RETENTION` (their delivery attempts go
with them), a bounded batch per sweep, so the outbox does not grow without end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine

from models.mail import OutgoingMail
from models.mail_repo import due_mails
from models.outbox import OutboxKind, purge
from models.webhook_events import due_messages
from models.webhooks import WebhookMessage
from runtime.db import session_scope
from runtime.logging import get_logger
from runtime.settings import Settings
from workers.enqueue import enqueue_outbox

log = get_logger("scheduler.outbox_sweep")
EnqueueOutbox = Callable[[OutboxKind, uuid.UUID], None]
#: how long delivered or given-up messages (and their attempts) stay listed
RETENTION = timedelta(days=30)


def sweep_outbox(
    engine: Engine, settings: Settings, enqueue: EnqueueOutbox = enqueue_outbox
) -> int:
    """Enqueue every unclaimed due outbox row once; how many were sent."""
    with session_scope(engine) as session:
        lost: list[tuple[OutboxKind, uuid.UUID]] = [
            *(("webhook", i) for i in due_messages(session, settings.queued_grace_s)),
            *(("mail", i) for i in due_mails(session, settings.queued_grace_s)),
        ]
        purged = purge(session, WebhookMessage, RETENTION) + purge(session, OutgoingMail, RETENTION)
    sent = 0
    for kind, row_id in lost:
        try:
            enqueue(kind, row_id)
        except Exception as exc:  # the next sweep tries again
            log.error("outbox.enqueue_failed", kind=kind, row_id=str(row_id), error=str(exc))
        else:
            sent += 1
    if lost or purged:
        log.info("outbox.swept", found=len(lost), enqueued=sent, purged=purged)
    return sent
