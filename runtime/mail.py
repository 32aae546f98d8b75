"""Mail transports behind a one-method seam (`Mailer.send`), so delivery can be swapped.

    SmtpMailer      the standard library's `smtplib`, configured by `SMTP_URL`
                    (`smtp://user:pass@host:587` upgrades with STARTTLS when the server offers
                    it; `smtps://host:465` is TLS from the first byte)
    LoggingMailer   writes messages to the log: in development the whole body (so a reset token
                    or invitation link can be copied from the console), otherwise only the
                    recipient and subject, because the body holds a secret
    RecordingMailer keeps messages in memory: the test twin

`mailer_for(settings)` picks SMTP when `SMTP_URL` is set, else logging. The API never calls a
transport in a request: it queues the mail (`models.mail_repo`) and a worker's `mail.send`
actor hands it to the transport after the request's transaction committed. SMTP failures are
raised as `MailDeliveryFailed` (transient: the actor retries with backoff).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal, Protocol, get_args
from urllib.parse import unquote, urlsplit

import structlog

from runtime.errors import ConfigurationError, TransientFailure
from runtime.settings import Settings

MailKind = Literal["password_reset", "invitation", "notification", "email_change"]
MAIL_KINDS: tuple[MailKind, ...] = get_args(MailKind)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    kind: MailKind


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...


class MailDeliveryFailed(TransientFailure):
    """The SMTP server refused the message or could not be reached (worth retrying)."""

    code = "mail_delivery_failed"


class LoggingMailer:
    def __init__(self, *, include_body: bool) -> None:
        self.include_body = include_body
        self._log = structlog.get_logger("runtime.mail")

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


@dataclass(frozen=True)
class SmtpTarget:
    """`SMTP_URL` taken apart; the password stays here, never in a log line."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError("SMTP_URL must look like smtp://user:password@host:587")
        implicit_tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit_tls else 587),
            implicit_tls=implicit_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class SmtpMailer:
    """One SMTP session per message: mail is rare here (invitations, resets), and a fresh
    connection never trips over a server that closed an idle one."""

    def __init__(self, url: str, mail_from: str, *, timeout_s: float = 30.0) -> None:
        self.target = SmtpTarget.parse(url)
        self.mail_from = mail_from
        self.timeout_s = timeout_s
        self._log = structlog.get_logger("runtime.mail")

    def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Message-ID"] = make_msgid(domain="dashin")
        message.set_content(mail.body)
        try:
            with self._connect() as smtp:
                if self.target.username:
                    smtp.login(self.target.username, self.target.password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailDeliveryFailed(
                f"SMTP {self.target.host}:{self.target.port}: {type(exc).__name__}: {exc}"
            ) from exc
        self._log.info("mail.sent", kind=mail.kind, to=mail.to, subject=mail.subject)

    def _connect(self) -> smtplib.SMTP:
        target = self.target
        if target.implicit_tls:
            return smtplib.SMTP_SSL(
                target.host,
                target.port,
                timeout=self.timeout_s,
                context=ssl.create_default_context(),
            )
        smtp = smtplib.SMTP(target.host, target.port, timeout=self.timeout_s)
        try:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp


def mailer_for(settings: Settings) -> Mailer:
    """SMTP when `SMTP_URL` is set; otherwise the log. Bodies hold tokens, so they are logged
    only in development and only when asked (`DASHIN_LOG_MAIL_BODIES`)."""
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url, settings.mail_from)
    return LoggingMailer(include_body=settings.env == "development" and settings.log_mail_bodies)


def mail_configured(settings: Settings) -> bool:
    """Can mail leave this installation? Development may log instead; production may not."""
    return bool(settings.smtp_url) or settings.env == "development"
