"""The `mail.send` actor: hand one queued mail (`models.mail_repo`) to the transport.

The transport is `runtime.mail.mailer_for(settings)`: SMTP with `SMTP_URL`, else the log. A
failed attempt (server down, refused) is retried with exponential backoff, `MAX_ATTEMPTS` in
all (about an hour), then given up; the body, which holds a token, is wiped either way. The
retry is a delayed message; if it is lost, the scheduler's outbox sweep sends it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import Engine

from models.mail_repo import claim_mail, mail_failed, mail_sent
from runtime.db import session_scope
from runtime.logging import get_logger
from runtime.mail import Mailer, mailer_for
from runtime.settings import Settings
from workers.enqueue import enqueue_outbox
from workers.outbox import backoff_s

log = get_logger("workers.mail")
MAX_ATTEMPTS = 10
RETRY_BASE_S = 5.0
RETRY_MAX_S = 900.0
#: an SMTP conversation that outlives this is presumed dead and the mail tried again
HOLD_S = 120.0
#: the actor's time limit: an attempt never outlives its hold
TIME_LIMIT_S = HOLD_S + 60


class MailSender:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        mailer: Mailer | None = None,
        *,
        enqueue: Callable[..., None] = enqueue_outbox,
        retry_base_s: float = RETRY_BASE_S,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.mailer = mailer or mailer_for(settings)
        self.enqueue = enqueue
        self.retry_base_s = retry_base_s

    def send(self, mail_id: uuid.UUID) -> str:
        """One attempt; returns `sent`, `retry`, `failed` or `skipped`."""
        with session_scope(self.engine) as session:
            claimed = claim_mail(session, mail_id, self.settings.require_secret_key(), HOLD_S)
        if claimed is None:
            return "skipped"
        try:
            self.mailer.send(claimed.mail)
        except Exception as exc:  # SMTP and socket errors alike: try again later
            error = f"{type(exc).__name__}: {exc}"
            retry_in = None
            if claimed.attempt < MAX_ATTEMPTS:
                retry_in = backoff_s(claimed.attempt, self.retry_base_s, RETRY_MAX_S)
            with session_scope(self.engine) as session:
                mail_failed(session, mail_id, error, retry_in)
            log.warning(
                "mail.failed",
                mail_id=str(mail_id),
                kind=claimed.mail.kind,
                attempt=claimed.attempt,
                error=error,
                retry_in_s=retry_in,
            )
            if retry_in is None:
                return "failed"
            self.enqueue("mail", mail_id, delay_s=retry_in)
            return "retry"
        with session_scope(self.engine) as session:
            mail_sent(session, mail_id)
        return "sent"
