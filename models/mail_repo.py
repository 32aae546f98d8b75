"""Queued mail: insert in the caller's transaction, then claim and settle from the `mail.send`
actor (the outbox mechanics are `models.outbox`'s). Functions flush and never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from models import outbox
from models.mail import OutgoingMail
from runtime.crypto import decrypt_json, encrypt_json
from runtime.mail import Mail


def queue_mail(
    session: Session, mail: Mail, secret_key: str, *, domain_id: uuid.UUID | None = None
) -> uuid.UUID:
    """Store `mail` (body encrypted) for the `mail.send` actor; it leaves after commit."""
    mail_id: uuid.UUID = session.execute(
        insert(OutgoingMail)
        .values(
            domain_id=domain_id,
            kind=mail.kind,
            recipient=mail.to,
            subject=mail.subject,
            body=encrypt_json(secret_key, {"body": mail.body}),
        )
        .returning(OutgoingMail.id)
    ).scalar_one()
    outbox.ring(session, "mail", mail_id)
    return mail_id


@dataclass(frozen=True)
class ClaimedMail:
    attempt: int
    mail: Mail


def claim_mail(
    session: Session, mail_id: uuid.UUID, secret_key: str, hold_s: float
) -> ClaimedMail | None:
    attempt = outbox.claim(session, OutgoingMail, mail_id, hold_s)
    if attempt is None:
        return None
    row = session.execute(
        select(
            OutgoingMail.kind, OutgoingMail.recipient, OutgoingMail.subject, OutgoingMail.body
        ).where(OutgoingMail.id == mail_id)
    ).one()
    body = str(decrypt_json(secret_key, row.body).get("body", ""))
    return ClaimedMail(
        attempt, Mail(to=row.recipient, subject=row.subject, body=body, kind=row.kind)
    )


def mail_sent(session: Session, mail_id: uuid.UUID) -> None:
    outbox.succeed(session, OutgoingMail, mail_id, sent_at=func.now(), body=None)


def mail_failed(session: Session, mail_id: uuid.UUID, error: str, retry_in_s: float | None) -> None:
    """A failed attempt; given up (`retry_in_s` None) also wipes the body and its token."""
    extra = {"body": None} if retry_in_s is None else {}
    outbox.fail(session, OutgoingMail, mail_id, error, retry_in_s, **extra)


def due_mails(session: Session, grace_s: float) -> list[uuid.UUID]:
    return outbox.due(session, OutgoingMail, grace_s)
