"""Mail for real: invitations and password resets are queued with the request's transaction and
sent by the `mail.send` actor through SMTP (`SMTP_URL`) to a local `aiosmtpd` server.

Without `SMTP_URL`, production refuses the flows (503 `mail_not_configured`) and development
logs the mail instead.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from models.mail import OutgoingMail
from runtime.broker import make_broker, set_broker
from runtime.errors import ConfigurationError
from runtime.mail import LoggingMailer, Mail, MailDeliveryFailed, SmtpMailer, SmtpTarget
from runtime.settings import get_settings, load_settings, reset_settings_cache
from tests.api.conftest import ApiUser, MakeUser
from tests.cli.conftest import Proc, live_env
from tests.receivers import SmtpReceiver, free_port
from workers.mail import MailSender

MAIL_FROM = "Dashin Test <robot@dashin.test>"
__all__ = ["live_env"]  # a fixture, used by the SMTP test


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver()
    yield server
    server.close()


@pytest.fixture
def queued_client(
    settings_env: None, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The API as deployed: mail is queued for a worker (no test transport)."""
    from api.app import create_app
    from api.deps import redis_client
    from runtime.db import reset_engines

    set_broker(make_broker(redis_url))
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client
    reset_engines()
    redis_client.cache_clear()
    set_broker(None)


def mails(engine: Engine) -> list[OutgoingMail]:
    with Session(engine) as session:
        return list(session.scalars(select(OutgoingMail).order_by(OutgoingMail.created_at)))


def test_production_without_smtp_refuses_the_flows(
    queued_client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    manager = make_user()
    existing = make_user()
    monkeypatch.setenv("DASHIN_ENV", "production")
    monkeypatch.delenv("SMTP_URL", raising=False)
    reset_settings_cache()
    url = f"/api/v1/domains/{manager.domain_id}/invitations"
    refused = queued_client.post(url, json={"email": "new@x.example"}, headers=manager.auth)
    assert refused.status_code == 503
    problem = refused.json()
    # An existing account gets the same answer: invitations never add anyone at once (M1)
    same = queued_client.post(url, json={"email": existing.email}, headers=manager.auth)
    assert (same.status_code, same.json()["type"]) == (503, problem["type"])
    assert problem["type"] == "urn:dashin:problem:mail_not_configured"
    assert "SMTP_URL" in problem["detail"]
    for email in (existing.email, "nobody@x.example"):  # the same answer for both
        reset = queued_client.post("/api/v1/auth/password-reset", json={"email": email})
        assert reset.status_code == 503 and reset.json()["type"] == problem["type"]
    assert mails(engine) == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM invitations").scalar_one() == 0


def test_a_reset_is_queued_encrypted_not_sent_in_the_request(
    queued_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    user = make_user()
    response = queued_client.post("/api/v1/auth/password-reset", json={"email": user.email})
    assert response.status_code == 202
    (queued,) = mails(engine)
    assert queued.kind == "password_reset" and queued.recipient == user.email
    assert queued.status == "pending" and queued.body is not None
    assert b"reset" not in bytes(queued.body).lower()  # the body (with its token) is encrypted


@pytest.mark.slow
def test_an_invitation_arrives_by_smtp_with_a_link_that_works(
    queued_client: TestClient,
    make_user: MakeUser,
    engine: Engine,
    smtp: SmtpReceiver,
    live_env: dict[str, str],
) -> None:
    # Given a worker that sends mail through the local SMTP server
    env = {**live_env, "SMTP_URL": smtp.url, "DASHIN_MAIL_FROM": MAIL_FROM}
    worker = Proc([sys.executable, "-m", "workers", "--queues", "mail"], env)
    try:
        worker.wait_for("worker.ready")
        # When a manager invites a new email
        manager: ApiUser = make_user()
        url = f"/api/v1/domains/{manager.domain_id}/invitations"
        invited = queued_client.post(
            url, json={"email": "newbie@x.example", "role": "member"}, headers=manager.auth
        )
        assert invited.status_code == 201, invited.text
        # Then the mail arrives at the SMTP server, from DASHIN_MAIL_FROM
        smtp.wait_for(lambda: len(smtp.messages) == 1, 60, "the invitation mail")
    finally:
        worker.stop()
    (message,) = smtp.messages
    assert message["To"] == "newbie@x.example" and message["From"] == MAIL_FROM
    assert manager.domain_name in message["Subject"]
    body = message.get_payload(decode=True).decode()
    link = next(line for line in body.splitlines() if "/auth/invitation?token=" in line).strip()
    # And its link works: it shows the invitation, whose token then signs the invitee up
    parts = urlsplit(link)
    shown = queued_client.get(f"{parts.path}?{parts.query}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["email"] == "newbie@x.example" and shown.json()["role"] == "member"
    token = parts.query.removeprefix("token=")
    signup = queued_client.post(
        "/api/v1/auth/signup",
        json={
            "email": "newbie@x.example",
            "password": "correct horse battery staple",
            "domain_name": shown.json()["domain_name"],
            "invitation_token": token,
        },
    )
    assert signup.status_code == 201, signup.text
    assert signup.json()["role"] == "member" and signup.json()["domain_id"] == str(
        manager.domain_id
    )
    assert queued_client.get(f"{parts.path}?{parts.query}").status_code == 404  # spent
    (sent,) = mails(engine)
    assert sent.status == "done" and sent.sent_at is not None and sent.body is None


def test_a_mail_is_retried_until_the_smtp_server_answers(
    settings_env: None, engine: Engine
) -> None:
    # Given a queued mail and an SMTP server that is not up yet
    from models.mail_repo import queue_mail

    port = free_port()
    settings = get_settings()
    with Session(engine) as session, session.begin():
        mail = Mail(to="a@x.example", subject="Hi", body="token: t-1", kind="notification")
        mail_id = queue_mail(session, mail, settings.require_secret_key())
    retries: list[tuple[str, uuid.UUID, float]] = []
    sender = MailSender(
        engine,
        settings,
        SmtpMailer(f"smtp://127.0.0.1:{port}", MAIL_FROM, timeout_s=5),
        enqueue=lambda kind, row_id, delay_s=0.0: retries.append((kind, row_id, delay_s)),
        retry_base_s=0.5,
    )
    # When the actor tries, the attempt fails and a retry is scheduled with backoff
    assert sender.send(mail_id) == "retry"
    assert retries and retries[0][:2] == ("mail", mail_id) and 0.4 <= retries[0][2] <= 0.6
    (row,) = mails(engine)
    assert row.attempts == 1 and row.last_error and "Connection refused" in row.last_error
    # And once the server is up, the retry delivers it
    server = SmtpReceiver(port=port)
    try:
        with engine.begin() as conn:
            conn.execute(update(OutgoingMail).values(next_attempt_at=datetime.now(UTC)))
        assert sender.send(mail_id) == "sent"
        assert sender.send(mail_id) == "skipped"  # a duplicate message sends nothing
    finally:
        server.close()
    assert [m["Subject"] for m in server.messages] == ["Hi"]
    (row,) = mails(engine)
    assert row.status == "done" and row.body is None


def test_smtp_url_is_parsed_and_masked() -> None:
    target = SmtpTarget.parse("smtps://user%40acme.com:p%40ss@mail.acme.com")
    assert (target.host, target.port, target.implicit_tls) == ("mail.acme.com", 465, True)
    assert (target.username, target.password) == ("user@acme.com", "p@ss")
    plain = SmtpTarget.parse("smtp://mail.acme.com")
    assert (plain.port, plain.implicit_tls, plain.username) == (587, False, None)
    settings = load_settings(SMTP_URL="smtp://u:secret@mail.acme.com:2525")
    assert "secret" not in settings.masked()["SMTP_URL"]
    with pytest.raises(ConfigurationError, match="SMTP_URL"):
        load_settings(SMTP_URL="http://mail.acme.com")


def test_logging_mailer_is_the_development_default(capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.mail import mailer_for

    settings = load_settings(DASHIN_ENV="development", SMTP_URL="")
    mailer = mailer_for(settings)
    # Issue 14: development logged every token; bodies are logged only when asked for
    assert isinstance(mailer, LoggingMailer) and not mailer.include_body
    opted_in = load_settings(DASHIN_ENV="development", SMTP_URL="", DASHIN_LOG_MAIL_BODIES="1")
    assert cast(LoggingMailer, mailer_for(opted_in)).include_body
    production = load_settings(DASHIN_ENV="production", SMTP_URL="", DASHIN_LOG_MAIL_BODIES="1")
    assert not cast(LoggingMailer, mailer_for(production)).include_body
    assert isinstance(mailer_for(load_settings(SMTP_URL="smtp://h:25")), SmtpMailer)
    with pytest.raises(MailDeliveryFailed):
        SmtpMailer(f"smtp://127.0.0.1:{free_port()}", MAIL_FROM, timeout_s=2).send(
            Mail(to="a@b.example", subject="s", body="b", kind="notification")
        )
