"""The `webhooks.deliver` actor: sign one outbox message per Standard Webhooks and POST it.

Each attempt claims the message (`models.webhook_events.claim_message`), signs the exact body
with the endpoint's secret (`standardwebhooks`: `webhook-id`, `webhook-timestamp` of this
attempt, `webhook-signature: v1,<base64 HMAC-SHA256>`), POSTs it through the SSRF guard the
connectors use (`connectors.kit.ssrf.GuardedTransport`, no redirects followed), and keeps the
attempt. A 2xx answer delivers the message; anything else is retried with exponential backoff
(`DASHIN_WEBHOOK_RETRY_BASE_S`, doubling, capped at `DASHIN_WEBHOOK_RETRY_MAX_DELAY_S`) until
`DASHIN_WEBHOOK_RETRY_WINDOW_S` (24 h) after the event. An endpoint whose every attempt failed
for `DASHIN_WEBHOOK_DISABLE_AFTER_S` is disabled and the domain's managers are notified.
The retry is a delayed message; if it is lost, the scheduler's outbox sweep sends it again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook as Signer

from connectors.kit.ssrf import GuardedTransport
from models.webhook_events import Attempt, ClaimedMessage, claim_message, give_up, settle_attempt
from runtime.crypto import decrypt_json
from runtime.db import session_scope
from runtime.logging import get_logger
from runtime.settings import Settings
from workers.enqueue import enqueue_outbox
from workers.outbox import backoff_s

log = get_logger("workers.webhooks")
Enqueue = Callable[..., None]
USER_AGENT = "Dashin-Webhooks/1"
#: how much of a failed attempt's answer is read and kept (bytes)
ERROR_BODY_CHARS = 200


class WebhookSender:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        enqueue: Enqueue = enqueue_outbox,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.enqueue = enqueue
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def deliver(self, message_id: uuid.UUID) -> str:
        """One attempt; returns what happened (`delivered`, `retry`, `failed`, `skipped`)."""
        hold_s = self.settings.webhook_timeout_s + 30
        with session_scope(self.engine) as session:
            claimed = claim_message(session, message_id, hold_s)
        if claimed is None:
            return "skipped"  # settled, in flight elsewhere, or not due yet
        if not claimed.endpoint_enabled:
            with session_scope(self.engine) as session:
                give_up(session, claimed, "the endpoint is disabled")
            return "failed"
        attempt = self._post(claimed)
        retry_in = None if attempt.succeeded else self._retry_in(claimed)
        with session_scope(self.engine) as session:
            disabled = settle_attempt(
                session,
                claimed,
                attempt,
                retry_in_s=retry_in,
                disable_after_s=self.settings.webhook_disable_after_s,
            )
        outcome = "delivered" if attempt.succeeded else "retry" if retry_in else "failed"
        log.info(
            "webhook.attempt",
            message_id=claimed.webhook_message_id,
            webhook_id=str(claimed.webhook_id),
            event_type=claimed.event_type,
            attempt=claimed.attempt,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
            outcome=outcome,
            retry_in_s=round(retry_in, 3) if retry_in else None,
        )
        if disabled:
            log.warning("webhook.disabled", webhook_id=str(claimed.webhook_id))
        if retry_in is not None:
            self.enqueue("webhook", message_id, delay_s=retry_in)
        return outcome

    def _retry_in(self, claimed: ClaimedMessage) -> float | None:
        delay = backoff_s(
            claimed.attempt,
            self.settings.webhook_retry_base_s,
            self.settings.webhook_retry_max_delay_s,
        )
        deadline = claimed.retry_from + timedelta(seconds=self.settings.webhook_retry_window_s)
        return delay if datetime.now(UTC) + timedelta(seconds=delay) <= deadline else None

    def _post(self, claimed: ClaimedMessage) -> Attempt:
        secret = decrypt_json(self.settings.require_secret_key(), claimed.secret)["secret"]
        sent_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": claimed.webhook_message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Signer(secret).sign(
                claimed.webhook_message_id, sent_at, claimed.body
            ),
        }
        started = time.monotonic()
        try:
            request = self._http().stream(
                "POST", claimed.url, content=claimed.body, headers=headers
            )
            with request as response:
                latency = _ms_since(started)
                if response.is_success:
                    return Attempt(True, response.status_code, latency, None)
                # the start of the body says why; an endpoint's body is never read whole
                head = next(response.iter_bytes(ERROR_BODY_CHARS), b"")
        except Exception as exc:  # refused, timed out, SSRF guard, TLS: all a failed attempt
            return Attempt(False, None, _ms_since(started), f"{type(exc).__name__}: {exc}")
        excerpt = head[:ERROR_BODY_CHARS].decode("utf-8", "replace").strip()
        error = f"HTTP {response.status_code}" + (f": {excerpt}" if excerpt else "")
        return Attempt(False, response.status_code, latency, error)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                transport = self._transport or GuardedTransport(self.settings.ssrf_allow)
                self._client = httpx.Client(
                    transport=transport,
                    timeout=self.settings.webhook_timeout_s,
                    follow_redirects=False,
                )
            return self._client

    @property
    def time_limit_s(self) -> float:
        """How long one attempt may take, for the actor's time limit."""
        return self.settings.webhook_timeout_s + 60

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
