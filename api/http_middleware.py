"""The one shape of our pure ASGI middlewares: they act on HTTP requests and let lifespan and
WebSocket traffic through untouched (a WebSocket has no request body, status or problem
answer to act on)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request; subclasses call `self.app` when they pass it on."""
        raise NotImplementedError
