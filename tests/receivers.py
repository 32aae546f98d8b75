"""Local receivers for what Dashin sends out: webhooks (HTTP) and mail (SMTP, `aiosmtpd`).

WebhookReceiver(secret=None, port=0)   an HTTP server on 127.0.0.1 recording every request;
    `.answer` (a status code, or None to drop the connection) and `.answer_body` decide the
    reply; with a
    `secret` each request is verified with the `standardwebhooks` package and the verified
    payloads land in `.verified` keyed by `webhook-id` (a redelivery is recorded once).
    `.wait_for(predicate, timeout)` waits for a condition on the receiver, never a sleep.
SmtpReceiver(port=None)   an SMTP server on 127.0.0.1 (a free port unless given);
    `.messages` are `email.message.Message`s.
"""

from __future__ import annotations

import email
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int | None


class _Waitable:
    def __init__(self) -> None:
        self.changed = threading.Condition()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self.changed.wait(left)

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()


class WebhookReceiver(_Waitable):
    def __init__(self, secret: str | None = None, port: int = 0) -> None:
        super().__init__()
        self.secret = secret
        self.answer: int | None = 200
        self.answer_body = b""
        self.requests: list[Received] = []
        self.verified: dict[str, Any] = {}
        self.failures: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver.answer
                if status is None:  # drop the connection without an answer
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    self.send_response(status)
                    self.send_header("content-length", str(len(receiver.answer_body)))
                    self.end_headers()
                    self.wfile.write(receiver.answer_body)
                receiver._record(dict(self.headers.items()), body, status)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _record(self, headers: dict[str, str], body: bytes, status: int | None) -> None:
        with self.changed:
            self.requests.append(Received(headers, body, status))
            if self.secret is not None and status is not None and 200 <= status < 300:
                try:
                    payload = Webhook(self.secret).verify(body, headers)
                except WebhookVerificationError as exc:
                    self.failures.append(str(exc))
                else:
                    self.verified.setdefault(headers["webhook-id"], payload)
            self.changed.notify_all()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver(_Waitable):
    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.original_content or envelope.content)
                with receiver.changed:
                    receiver.messages.append(message)
                    receiver.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                    receiver.changed.notify_all()
                return "250 Message accepted for delivery"

        self.port = port or free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.controller.stop()
