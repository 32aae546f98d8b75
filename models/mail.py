"""Queued mail (invitations, password resets): an outbox row per message.

The body carries a secret (an invitation or reset token), so it is stored Fernet-encrypted with
`DASHIN_SECRET_KEY` and wiped once the message has left (or been given up): the database never
keeps a usable token in clear, and not for longer than delivery takes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, enum_check, uuid_pk
from models.outbox import OUTBOX_STATUSES, OutboxColumns
from runtime.mail import MAIL_KINDS


class OutgoingMail(OutboxColumns, Base):
    __tablename__ = "outgoing_mails"
    __table_args__ = (
        enum_check("status", OUTBOX_STATUSES),
        enum_check("kind", MAIL_KINDS),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    #: the domain a mail is about (an invitation); null for a user's own (a password reset)
    domain_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet token; null once settled
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
