"""Outgoing mail behind a one-method seam, so delivery can be swapped (SMTP, a provider API).

The default `LoggingMailer` writes messages to the log: in development the whole body (so the
reset link or invitation token can be copied from the console), in production only the recipient
and subject, because the body holds a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import structlog

MailKind = Literal["password_reset", "invitation"]


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    kind: MailKind


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...


class LoggingMailer:
    def __init__(self, *, include_body: bool) -> None:
        self.include_body = include_body
        self._log = structlog.get_logger("api.mailer")

    def send(self, mail: Mail) -> None:
        if self.include_body:
            self._log.info(
                "mail.logged", kind=mail.kind, to=mail.to, subject=mail.subject, body=mail.body
            )
        else:
            self._log.info("mail.logged", kind=mail.kind, to=mail.to, subject=mail.subject)


@dataclass
class RecordingMailer:
    """Keeps messages in memory: the test twin of a real mailer."""

    sent: list[Mail] = field(default_factory=list)

    def send(self, mail: Mail) -> None:
        self.sent.append(mail)
