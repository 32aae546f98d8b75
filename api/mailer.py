"""Mail from the API: queued in the request's transaction, sent by a worker after it commits.

A route never talks to a mail server: `QueuedMail.post` stores the message (body encrypted,
`models.mail_repo`), the after-commit doorbell enqueues it, and the worker's `mail.send` actor
delivers it through `runtime.mail` (SMTP with `SMTP_URL`; the log in development), retrying
with backoff. A rolled-back request sends nothing.

Without `SMTP_URL` in production there is nowhere for a mail to go: `require()` refuses the
flow with a 503 `mail_not_configured` problem instead of pretending an invitation or reset
token was sent. `DirectMail` hands messages straight to a transport: the test seam
(`create_app(mailer=RecordingMailer())`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from models.mail_repo import queue_mail
from runtime.errors import TransientFailure
from runtime.mail import LoggingMailer, Mail, Mailer, MailKind, RecordingMailer, mail_configured
from runtime.settings import get_settings

__all__ = [
    "DirectMail",
    "LoggingMailer",
    "Mail",
    "MailDep",
    "MailKind",
    "MailNotConfigured",
    "MailOutbox",
    "Mailer",
    "QueuedMail",
    "RecordingMailer",
]


class MailNotConfigured(TransientFailure):
    """Production without `SMTP_URL`: flows that depend on a mail are refused (503)."""

    code = "mail_not_configured"


class MailOutbox(Protocol):
    def require(self) -> None:
        """Raise `MailNotConfigured` when mail cannot leave this installation."""

    def post(self, session: Session, mail: Mail, *, domain_id: uuid.UUID | None = None) -> None:
        """Send `mail` once `session`'s transaction has committed."""


class QueuedMail:
    def require(self) -> None:
        if not mail_configured(get_settings()):
            raise MailNotConfigured(
                "mail is not configured: set SMTP_URL (and DASHIN_MAIL_FROM) so invitations "
                "and password resets can be sent"
            )

    def post(self, session: Session, mail: Mail, *, domain_id: uuid.UUID | None = None) -> None:
        self.require()
        queue_mail(session, mail, get_settings().require_secret_key(), domain_id=domain_id)


class DirectMail:
    """Sends through `mailer` at once, inside the request (tests only)."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    def require(self) -> None:
        return None

    def post(self, session: Session, mail: Mail, *, domain_id: uuid.UUID | None = None) -> None:
        self.mailer.send(mail)


async def get_mail(request: Request) -> MailOutbox:
    mail: MailOutbox = request.app.state.mail
    return mail


MailDep = Annotated[MailOutbox, Depends(get_mail)]
