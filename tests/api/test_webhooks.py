"""`/webhooks`: endpoints per domain, events recorded with the change that caused them, signed
deliveries kept per attempt, redelivery, backoff, giving up, and disabling a dead endpoint.

Deliveries here run `workers.webhooks.WebhookSender` in this process against a local receiver
(`tests.receivers`); the worker-process runs, with a real broker, are in
tests/workers/test_webhook_delivery.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from api.schemas.jobs import JobOut
from models import job_states, jobs_repo
from models.webhook_events import job_data
from models.webhooks import WebhookMessage
from runtime.settings import Settings, get_settings
from scheduler.outbox_sweep import sweep_outbox
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
    move_job,
    run_in_process,
)
from tests.factories import make_job, make_source
from tests.receivers import WebhookReceiver
from workers.webhooks import WebhookSender

pytestmark = pytest.mark.usefixtures("connectors_registry")
BASE = "/api/v1/webhooks"
ALL_JOB_EVENTS = ["job.completed", "job.failed", "job.paused", "job.cancelled"]


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


def create_webhook(
    client: TestClient, user: ApiUser, url: str, events: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"url": url, "events": events or ALL_JOB_EVENTS, **extra}
    response = client.post(BASE, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def messages(engine: Engine, event_type: str | None = None) -> list[WebhookMessage]:
    with Session(engine) as session:
        query = select(WebhookMessage).order_by(WebhookMessage.created_at)
        if event_type:
            query = query.where(WebhookMessage.event_type == event_type)
        return list(session.scalars(query))


class Enqueued(list[tuple[str, uuid.UUID, float]]):
    def __call__(self, kind: str, row_id: uuid.UUID, *, delay_s: float = 0.0) -> None:
        self.append((kind, row_id, delay_s))


def sender(engine: Engine, **settings: Any) -> tuple[WebhookSender, Enqueued]:
    enqueued = Enqueued()
    tuned: Settings = get_settings().model_copy(update=settings)
    return WebhookSender(engine, tuned, enqueue=enqueued), enqueued


# --- the resource ----------------------------------------------------------------------------


def test_crud_shows_the_secret_once_and_stores_it_encrypted(
    api_client: TestClient, manager: ApiUser, engine: Engine, receiver: WebhookReceiver
) -> None:
    created = create_webhook(
        api_client, manager, receiver.url, ["job.completed"], description="CRM"
    )
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert created["events"] == ["job.completed"] and created["enabled"] is True
    url = f"{BASE}/{created['id']}"
    shown = api_client.get(url, headers=manager.headers).json()
    listed = api_client.get(BASE, headers=manager.headers).json()["items"]
    assert "secret" not in shown and [w["id"] for w in listed] == [created["id"]]
    assert all("secret" not in w for w in listed)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT secret FROM webhooks")).scalar_one()
    assert secret.encode() not in bytes(stored) and secret[6:].encode() not in bytes(stored)
    changed = api_client.patch(
        url,
        json={"events": ["job.failed", "lead.assigned"], "enabled": False},
        headers=manager.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["job.failed", "lead.assigned"]
    assert changed.json()["enabled"] is False
    assert api_client.delete(url, headers=manager.headers).status_code == 204
    assert api_client.get(url, headers=manager.headers).status_code == 404


def test_managers_only_and_other_domains_get_404(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser, receiver: WebhookReceiver
) -> None:
    created = create_webhook(api_client, manager, receiver.url)
    url = f"{BASE}/{created['id']}"
    for role in ("member", "viewer"):
        user = make_user(manager.domain_name, role=role)
        assert api_client.get(BASE, headers=user.headers).status_code == 403
        assert (
            api_client.post(
                BASE, json={"url": receiver.url, "events": ["job.failed"]}, headers=user.headers
            ).status_code
            == 403
        )
    stranger = make_user()
    assert api_client.get(BASE, headers=stranger.headers).json()["items"] == []
    for method, path in [
        ("GET", url),
        ("PATCH", url),
        ("DELETE", url),
        ("POST", f"{url}/test"),
        ("GET", f"{url}/deliveries"),
        ("POST", f"{url}/deliveries/{uuid.uuid4()}/redeliver"),
    ]:
        response = api_client.request(method, path, json={}, headers=stranger.headers)
        assert response.status_code == 404, (method, path, response.text)
    assert api_client.get(url, headers=manager.headers).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.1.2.3/hooks",  # private, not in DASHIN_SSRF_ALLOW
        "ftp://127.0.0.1/hooks",  # not http(s)
    ],
)
def test_urls_pass_the_connectors_ssrf_guard(
    api_client: TestClient, manager: ApiUser, url: str
) -> None:
    response = api_client.post(
        BASE, json={"url": url, "events": ["job.failed"]}, headers=manager.headers
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["url"]


def test_events_and_fields_are_validated(api_client: TestClient, manager: ApiUser) -> None:
    for body, field in [
        ({"url": "http://127.0.0.1/h", "events": ["job.exploded"]}, "events.0"),
        ({"url": "http://127.0.0.1/h", "events": []}, "events"),
        ({"events": ["job.failed"]}, "url"),
    ]:
        response = api_client.post(BASE, json=body, headers=manager.headers)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


# --- events are recorded with the change --------------------------------------------------------


def test_a_job_move_records_its_event_with_the_job_as_get_shows_it(
    api_client: TestClient, manager: ApiUser, engine: Engine, receiver: WebhookReceiver
) -> None:
    # Given an endpoint for job events and a queued job
    create_webhook(api_client, manager, receiver.url)
    source = create_source(api_client, manager)
    job_id = create_job(engine, manager.domain_id, source["id"], moves=("start",))
    # When the job is cancelled through the API
    assert (
        api_client.post(f"/api/v1/jobs/{job_id}/cancel", headers=manager.headers).status_code == 202
    )
    # Then one job.cancelled message was committed with it, carrying the job as GET shows it
    (message,) = messages(engine)
    assert message.event_type == "job.cancelled" and message.status == "pending"
    assert set(message.payload) == {"type", "timestamp", "data"}
    shown = api_client.get(f"/api/v1/jobs/{job_id}", headers=manager.headers).json()
    data = dict(message.payload["data"])
    assert data.pop("heartbeat_age_s") == shown.pop("heartbeat_age_s")
    assert data == shown
    # And a refused move records nothing
    assert (
        api_client.post(f"/api/v1/jobs/{job_id}/pause", headers=manager.headers).status_code == 409
    )
    assert len(messages(engine)) == 1


def test_a_job_that_fails_records_job_failed_with_the_job_as_get_shows_it(
    api_client: TestClient,
    manager: ApiUser,
    engine: Engine,
    receiver: WebhookReceiver,
    redis_url: str,
) -> None:
    # Given an endpoint for job.failed, another for job.completed, and a job whose every
    # record is invalid
    failed_hook = create_webhook(api_client, manager, receiver.url, ["job.failed"])
    create_webhook(api_client, manager, receiver.url, ["job.completed"])
    source = make_source(engine, manager.domain_id, "synthetic", {"total": 20, "page_size": 10})
    job_id = make_job(engine, manager.domain_id, source, {"bad_every": 1})
    move_job(engine, job_id, "start")
    # When it runs to its end, as a worker would, and fails
    assert run_in_process(engine, redis_url, job_id) == "failed"
    # Then one job.failed message was committed for the subscribed endpoint only
    (message,) = messages(engine)
    assert message.event_type == "job.failed" and message.status == "pending"
    assert str(message.webhook_id) == failed_hook["id"]
    assert set(message.payload) == {"type", "timestamp", "data"}
    assert message.payload["type"] == "job.failed"
    # And its data is the failed job as GET /jobs/{id} shows it
    shown = api_client.get(f"/api/v1/jobs/{job_id}", headers=manager.headers).json()
    assert (shown["status"], shown["error_code"]) == ("failed", "all_records_rejected")
    data = dict(message.payload["data"])
    # (the heartbeat's age was taken when the job failed, before the GET)
    assert 0 <= data.pop("heartbeat_age_s") <= shown.pop("heartbeat_age_s")
    assert data == shown


def test_job_data_has_the_fields_of_job_out(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    source = create_source(api_client, manager)
    job_id = create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire"))
    with Session(engine) as session:
        assert set(job_data(session, job_id)) == set(JobOut.model_fields)
        assert set(JobOut.build(jobs_repo.get_job(session, job_id)).model_dump()) == set(
            JobOut.model_fields
        )


def test_paused_by_a_rate_limit_carries_the_reason(
    api_client: TestClient, manager: ApiUser, engine: Engine, receiver: WebhookReceiver
) -> None:
    create_webhook(api_client, manager, receiver.url, ["job.paused"])
    source = create_source(api_client, manager)
    job_id = create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire"))
    resume_at = datetime.now(UTC) + timedelta(minutes=5)
    with Session(engine) as session, session.begin():
        lease = jobs_repo.get_job(session, job_id).lease
        assert job_states.park_rate_limited(session, job_id, lease, resume_at, "429") is not None
    (message,) = messages(engine)
    assert message.payload["type"] == "job.paused"
    assert message.payload["data"]["pause_reason"] == "rate_limited"
    assert message.payload["data"]["resume_at"] is not None


def test_only_subscribed_enabled_endpoints_of_the_domain_get_messages(
    api_client: TestClient,
    manager: ApiUser,
    make_user: MakeUser,
    engine: Engine,
    receiver: WebhookReceiver,
) -> None:
    failed_only = create_webhook(api_client, manager, receiver.url, ["job.failed"])
    create_webhook(api_client, manager, receiver.url, ["job.completed"], enabled=False)
    other = make_user()
    create_webhook(api_client, other, receiver.url, ["job.completed"])
    source = create_source(api_client, manager)
    create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire", "complete"))
    assert messages(engine) == []
    create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire", "fail"))
    found = messages(engine, "job.failed")
    assert [str(m.webhook_id) for m in found] == [failed_only["id"]]


def test_data_source_failing_is_told_once_per_run_of_failures(
    api_client: TestClient, manager: ApiUser, engine: Engine, receiver: WebhookReceiver
) -> None:
    create_webhook(api_client, manager, receiver.url, ["data_source.failing"])
    source = create_source(api_client, manager)
    failed = []
    for move in ("fail", "fail", "complete", "fail"):
        failed.append(
            create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire", move))
        )
    told = [m.payload["data"] for m in messages(engine, "data_source.failing")]
    assert [d["job_id"] for d in told] == [str(failed[0]), str(failed[3])]
    assert told[0]["id"] == source["id"] and told[0]["error"] == "boom"
    assert "config" not in told[0] and "credentials" not in told[0]


def test_lead_assignment_records_lead_assigned(
    api_client: TestClient,
    manager: ApiUser,
    make_user: MakeUser,
    engine: Engine,
    receiver: WebhookReceiver,
) -> None:
    create_webhook(api_client, manager, receiver.url, ["lead.assigned"])
    member = make_user(manager.domain_name, role="member")
    lead = api_client.post(
        "/api/v1/leads", json={"email": "a@x.example"}, headers=manager.headers
    ).json()
    response = api_client.post(
        f"/api/v1/leads/{lead['id']}/assign",
        json={"user_id": str(member.user_id)},
        headers=manager.headers,
    )
    assert response.status_code == 200, response.text
    (message,) = messages(engine, "lead.assigned")
    assert message.payload["data"] == {
        "lead_ids": [lead["id"]],
        "assigned_to": str(member.user_id),
        "assigned_by": str(manager.user_id),
    }


# --- deliveries ----------------------------------------------------------------------------------


def test_ping_is_signed_kept_and_redelivered_with_the_same_id(
    api_client: TestClient,
    manager: ApiUser,
    engine: Engine,
    receiver: WebhookReceiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    created = create_webhook(api_client, manager, receiver.url)
    receiver.secret = created["secret"]
    url = f"{BASE}/{created['id']}"
    queued = api_client.post(f"{url}/test", headers=manager.headers)
    assert queued.status_code == 202 and queued.json()["message_id"].startswith("msg_")
    deliver, _ = sender(engine)
    (message,) = messages(engine)
    assert deliver.deliver(message.id) == "delivered"
    assert deliver.deliver(message.id) == "skipped"  # a duplicate message finds nothing to do
    (payload,) = receiver.verified.values()
    assert payload["type"] == "ping" and payload["data"]["webhook_id"] == created["id"]
    request = receiver.requests[0]
    assert request.headers["webhook-id"] == queued.json()["message_id"]
    assert request.headers["webhook-signature"].startswith("v1,")
    (attempt,) = api_client.get(f"{url}/deliveries", headers=manager.headers).json()["items"]
    assert attempt["status_code"] == 200 and attempt["succeeded"] is True
    assert attempt["latency_ms"] >= 0 and attempt["error"] is None
    assert attempt["message_status"] == "done" and attempt["event_type"] == "ping"
    # When it is redelivered
    again = api_client.post(f"{url}/deliveries/{attempt['id']}/redeliver", headers=manager.headers)
    assert again.status_code == 202 and again.json()["message_id"] == attempt["message_id"]
    assert deliver.deliver(message.id) == "delivered"
    # Then the receiver got it twice with one webhook-id, and both attempts are kept
    assert [r.headers["webhook-id"] for r in receiver.requests] == [attempt["message_id"]] * 2
    assert len(receiver.verified) == 1 and receiver.failures == []
    items = api_client.get(f"{url}/deliveries", headers=manager.headers).json()["items"]
    assert [i["attempt"] for i in items] == [2, 1]
    # And the secret was never logged
    out = capsys.readouterr()
    assert created["secret"] not in out.out + out.err
    assert created["secret"][6:] not in out.out + out.err


def test_failed_attempts_back_off_then_give_up_after_the_window(
    api_client: TestClient, manager: ApiUser, engine: Engine, receiver: WebhookReceiver
) -> None:
    created = create_webhook(api_client, manager, receiver.url)
    receiver.answer, receiver.answer_body = 503, b"try later" + b"!" * 100_000
    api_client.post(f"{BASE}/{created['id']}/test", headers=manager.headers)
    (message,) = messages(engine)
    deliver, enqueued = sender(engine, webhook_retry_base_s=30.0)
    assert deliver.deliver(message.id) == "retry"
    (kind, row_id, delay) = enqueued[0]
    assert (kind, row_id) == ("webhook", message.id) and 24 <= delay <= 36
    assert deliver.deliver(message.id) == "skipped"  # not due for another ~30 s
    (attempt,) = api_client.get(
        f"{BASE}/{created['id']}/deliveries", headers=manager.headers
    ).json()["items"]
    assert attempt["status_code"] == 503 and attempt["error"].startswith("HTTP 503: try later!")
    assert len(attempt["error"]) < 250  # the start of the answer, not all of it
    assert attempt["message_status"] == "pending"
    # When the retry comes after the retry window has passed, the message is given up
    with engine.begin() as conn:
        conn.execute(update(WebhookMessage).values(next_attempt_at=datetime.now(UTC)))
    late, enqueued = sender(engine, webhook_retry_base_s=30.0, webhook_retry_window_s=10.0)
    assert late.deliver(message.id) == "failed" and enqueued == []
    assert messages(engine)[0].status == "failed"


def test_an_endpoint_failing_for_days_is_disabled_and_managers_told(
    api_client: TestClient, manager: ApiUser, engine: Engine, receiver: WebhookReceiver
) -> None:
    created = create_webhook(api_client, manager, receiver.url)
    source = create_source(api_client, manager)
    receiver.answer = 500
    create_job(engine, manager.domain_id, source["id"], moves=("start", "acquire", "fail"))
    (message,) = messages(engine)
    # Given every attempt has failed since three days ago
    with engine.begin() as conn:
        conn.execute(text("UPDATE webhooks SET failing_since = now() - interval '3 days'"))
    deliver, _ = sender(engine, webhook_disable_after_s=2 * 86400)
    assert deliver.deliver(message.id) == "retry"
    shown = api_client.get(f"{BASE}/{created['id']}", headers=manager.headers).json()
    assert shown["enabled"] is False and "HTTP 500" in shown["disabled_reason"]
    notes = api_client.get("/api/v1/notifications", headers=manager.headers).json()["items"]
    assert "webhook.disabled" in [n["kind"] for n in notes]
    # Its pending message is given up at its next turn; enabling it again clears the record
    with engine.begin() as conn:
        conn.execute(update(WebhookMessage).values(next_attempt_at=datetime.now(UTC)))
    assert deliver.deliver(message.id) == "failed"
    enabled = api_client.patch(
        f"{BASE}/{created['id']}", json={"enabled": True}, headers=manager.headers
    )
    assert enabled.json()["failing_since"] is None and enabled.json()["disabled_reason"] is None


def test_the_sweep_resends_messages_whose_doorbell_was_lost(
    api_client: TestClient, manager: ApiUser, engine: Engine, receiver: WebhookReceiver
) -> None:
    created = create_webhook(api_client, manager, receiver.url)
    api_client.post(f"{BASE}/{created['id']}/test", headers=manager.headers)
    (message,) = messages(engine)
    sent: list[tuple[str, uuid.UUID]] = []
    settings = get_settings()
    # Not yet: a message is left alone for the grace period
    assert sweep_outbox(engine, settings, lambda k, i: sent.append((k, i))) == 0
    with engine.begin() as conn:
        conn.execute(
            update(WebhookMessage).values(next_attempt_at=datetime.now(UTC) - timedelta(hours=1))
        )
    assert sweep_outbox(engine, settings, lambda k, i: sent.append((k, i))) == 1
    assert sent == [("webhook", message.id)]
    # and once per grace period, not at every sweep
    assert sweep_outbox(engine, settings, lambda k, i: sent.append((k, i))) == 0
    # A settled message is kept for a month, then purged
    with engine.begin() as conn:
        conn.execute(update(WebhookMessage).values(status="done"))
    sweep_outbox(engine, settings)
    assert len(messages(engine)) == 1
    with engine.begin() as conn:
        conn.execute(
            update(WebhookMessage).values(created_at=datetime.now(UTC) - timedelta(days=31))
        )
    sweep_outbox(engine, settings)
    assert messages(engine) == []
