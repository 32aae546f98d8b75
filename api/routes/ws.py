"""`/ws`: the domain's live feed (`api.live`) over a WebSocket, by channel.

The protocol is a few JSON messages (docs/api.md, "WebSocket"):

    client                                              server
    (no Authorization header) {"op": "auth", "token"}   {"type": "ready", "last_event_id", ...}
    {"op": "subscribe", "channels": ["lead"]}           {"type": "subscribed", "channels": [...]}
    {"op": "unsubscribe", "channels": ["lead"]}         {"type": "unsubscribed", "channels": [...]}
                                                        {"type": "event", "channel", "event", ...}
                                                        {"type": "error", "code", "message"}

Authentication: the `Authorization: Bearer` header when the client can set one, else the first
message (browsers cannot set headers on a WebSocket, and a token in the URL would land in access
logs). Never the console's cookie: a browser sends it on a cross-site WebSocket too. The token is
never logged or echoed. The domain is `Dashin-Domain` or `?domain=`; `?last_event_id=` (or the
`Last-Event-ID` header) replays the log after it, as on `/events`.

Nothing is sent before the first `subscribe`: the feed waits (the listener queues its doorbells
and the log is read from the cursor), so no event of the first channels committed after `ready`
is lost. An open socket re-checks its caller like an SSE stream and ends with `revoked`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from api import live
from api.db_threads import run_db
from api.deps import StreamAccess, token_access
from api.problems import NotAuthenticated
from runtime.errors import NotFound, PermissionDenied
from runtime.logging import get_logger
from runtime.settings import get_settings

log = get_logger(__name__)

router = APIRouter(tags=["events"])

#: how long a socket may stay silent before its `auth` message
AUTH_TIMEOUT_S = 10.0
#: the largest client message read (they are a few dozen bytes)
MAX_MESSAGE = 4096
#: close codes (4000-4999 are the application's): the HTTP status they stand for, plus 4000
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_BAD_MESSAGE = 4400


class _Refused(Exception):
    """The socket ends: `payload` is the last message, `code` the close code."""

    def __init__(self, code: int, error: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.payload = {"type": "error", "code": error, "message": message}


class _Socket:
    """Sends from the pump and the reader one message at a time."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._lock = anyio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await self.websocket.send_text(json.dumps(message))

    async def close(self, code: int, reason: str = "") -> None:
        async with self._lock:
            states = (self.websocket.application_state, self.websocket.client_state)
            if WebSocketState.DISCONNECTED not in states:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.websocket.close(code, reason)


async def _read_message(websocket: WebSocket) -> dict[str, Any] | None:
    """The next client message as a JSON object; None when the client went away."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None:
        raw = message.get("bytes") or b""
        text = raw.decode("utf-8", errors="replace")
    if len(text) > MAX_MESSAGE:
        raise _Refused(CLOSE_BAD_MESSAGE, "too_large", f"messages are at most {MAX_MESSAGE} bytes")
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        return {"op": None}
    return found


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def _token(websocket: WebSocket) -> str:
    """The header's token, else the first message's (`{"op": "auth", "token": ...}`)."""
    token = _bearer(websocket)
    if token:
        return token
    with anyio.move_on_after(AUTH_TIMEOUT_S):
        message = await _read_message(websocket)
        if message is None:
            raise _Refused(1000, "gone", "")
        token = message.get("token") if message.get("op") == "auth" else None
        if isinstance(token, str) and token:
            return token
        raise _Refused(
            CLOSE_UNAUTHENTICATED,
            "unauthenticated",
            'the first message must be {"op": "auth", "token": "..."} without an '
            "Authorization header",
        )
    raise _Refused(CLOSE_UNAUTHENTICATED, "unauthenticated", "no auth message in time")


async def _access(websocket: WebSocket, token: str) -> StreamAccess:
    domain = websocket.headers.get("dashin-domain") or websocket.query_params.get("domain")
    settings = get_settings()
    path = websocket.url.path
    try:
        return await run_db(lambda session: token_access(session, settings, token, domain, path))
    except NotAuthenticated as exc:
        raise _Refused(CLOSE_UNAUTHENTICATED, exc.code, exc.message) from None
    except NotFound as exc:
        raise _Refused(CLOSE_NOT_FOUND, exc.code, exc.message) from None
    except PermissionDenied as exc:
        raise _Refused(CLOSE_FORBIDDEN, exc.code, exc.message) from None


def _channels(message: dict[str, Any]) -> list[str]:
    found = message.get("channels")
    if not isinstance(found, list) or not all(isinstance(c, str) for c in found) or not found:
        raise ValueError('"channels" must be a non-empty list of channel names')
    return found


def _unknown(channels: Iterable[str]) -> list[str]:
    return [c for c in channels if c not in live.CHANNELS]


class _Session:
    """One authenticated socket: its channels, the feed's pump and the client's requests."""

    def __init__(self, socket: _Socket, access: StreamAccess, after_seq: int | None) -> None:
        self.socket = socket
        self.access = access
        self.after_seq = after_seq
        self.channels: set[str] = set()
        self.first_subscribe = anyio.Event()

    async def pump(self) -> None:
        """The feed to the client: `ready`, then (after the first subscribe) its channels."""
        principal = self.access.principal
        feed = live.domain_feed(
            principal.user_id,
            principal.domain_id,
            self.access.still_allowed,
            self.after_seq,
            principal.client_ids,
            restricted=principal.role == "member",
        )
        async with contextlib.aclosing(feed):
            async for event in feed:
                if event.event == "ready":
                    await self.socket.send(
                        {
                            "type": "ready",
                            "domain_id": str(principal.domain_id),
                            "last_event_id": event.id,
                            "channels": list(live.CHANNELS),
                            **event.data,
                        }
                    )
                    await self.first_subscribe.wait()
                elif event.event == "revoked":
                    await self.socket.send({"type": "revoked", **event.data})
                    await self.socket.close(CLOSE_FORBIDDEN, "access revoked")
                    return
                elif event.event == "resync":
                    await self.socket.send({"type": "resync", **event.data})
                elif event.channel in self.channels:
                    await self.socket.send(
                        {
                            "type": "event",
                            "channel": event.channel,
                            "event": event.event,
                            "id": event.id,
                            "data": event.data,
                        }
                    )

    async def requests(self) -> None:
        """The client's messages until it goes away."""
        while True:
            message = await _read_message(self.socket.websocket)
            if message is None:
                return
            await self.socket.send(self.answer(message))

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        if op not in ("subscribe", "unsubscribe"):
            if op == "ping":
                return {"type": "pong"}
            return {
                "type": "error",
                "code": "bad_message",
                "message": 'expected {"op": "subscribe" | "unsubscribe", "channels": [...]}',
            }
        try:
            asked = _channels(message)
        except ValueError as exc:
            return {"type": "error", "code": "bad_message", "message": str(exc)}
        unknown = _unknown(asked)
        if unknown:
            return {
                "type": "error",
                "code": "unknown_channel",
                "message": f"unknown channel {', '.join(map(repr, unknown))}; "
                f"channels: {', '.join(live.CHANNELS)}",
                "channels": unknown,
            }
        if op == "subscribe":
            self.channels.update(asked)
            self.first_subscribe.set()
        else:
            self.channels.difference_update(asked)
        return {"type": f"{op}d", "channels": sorted(self.channels)}


@router.websocket("/ws")
async def live_socket(websocket: WebSocket) -> None:
    """The live feed over a WebSocket (module docstring)."""
    await websocket.accept()
    socket = _Socket(websocket)
    try:
        access = await _access(websocket, await _token(websocket))
    except _Refused as refused:
        if refused.code != 1000:
            await socket.send(refused.payload)
        await socket.close(refused.code, refused.payload["message"][:120])
        return
    except WebSocketDisconnect:
        return
    last = websocket.headers.get("last-event-id") or websocket.query_params.get("last_event_id")
    session = _Session(socket, access, live.resume_after(last))
    opened = time.monotonic()
    try:
        await _serve(session)
    finally:
        # the access line a WebSocket does not get from the request middleware (no token in it)
        log.info(
            "ws.closed",
            user_id=str(access.principal.user_id),
            domain_id=str(access.principal.domain_id),
            channels=sorted(session.channels),
            duration_s=round(time.monotonic() - opened, 3),
        )


async def _serve(session: _Session) -> None:
    """The pump and the client's requests until either ends."""
    socket = session.socket
    async with anyio.create_task_group() as tasks:

        async def pump_then_stop() -> None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await session.pump()
            tasks.cancel_scope.cancel()

        tasks.start_soon(pump_then_stop)
        try:
            await session.requests()
        except _Refused as refused:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await socket.send(refused.payload)
            await socket.close(refused.code, refused.payload["message"][:120])
        except WebSocketDisconnect:
            pass
        tasks.cancel_scope.cancel()
