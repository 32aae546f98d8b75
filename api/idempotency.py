"""`Idempotency-Key` on POSTs that create something or start work: a retry replays, never redoes.

Opt a router in with one line, and every POST route of it honours the header::

    router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=IdempotentRoute)

What a client sees (keys are scoped to the domain and the user; `models.idempotency` stores them
in PostgreSQL for 24 hours, and the scheduler purges expired ones):

    first request with key K               runs; its response (status + body) is kept
    same K, same method/path/query/body     the kept response again, `Idempotent-Replayed: true`,
                                            and the work is not done again
    same K, another request                 422 `idempotency_key_reused`
    same K while the first is still running 409 `idempotency_key_in_flight`
    no header                               runs as always

A request that fails with an error (a 4xx problem raised by the route, or a server error) keeps
nothing: it did no work, so a retry with the same key runs afresh. Streamed multipart uploads
are not read twice to compare them: their fingerprint is the declared `Content-Length`.

Why a route class and not a middleware: the key's scope is the principal, which only exists once
the route's dependencies have authenticated the caller; and a route handler sees the finished
response before it is sent, so a replayable answer is stored before the client can retry.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute

from api.db_threads import run_db
from api.deps import CurrentPrincipal
from models import idempotency
from models.idempotency import StoredResponse
from runtime.errors import Conflict, FieldError, ValidationFailed
from runtime.logging import get_logger

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
log = get_logger("api.idempotency")


class IdempotencyKeyReused(ValidationFailed):
    """The key was first used with another request: a client bug, never replayed."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        message = "this Idempotency-Key was used with a different request"
        super().__init__(message, [FieldError(HEADER, self.code, message)])


class IdempotencyKeyInFlight(Conflict):
    """The first request with this key has not answered yet; retry in a moment."""

    code = "idempotency_key_in_flight"

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in progress")


class _Replay(Exception):
    """Raised by the dependency to answer with the kept response (caught by the route)."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("replay")
        self.stored = stored


@dataclass(frozen=True, slots=True)
class _Claim:
    domain_id: uuid.UUID
    user_id: uuid.UUID
    key: str


async def idempotency_claim(
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Any unique string (a UUID): a retry with the same key and body "
            "replays the first response for 24 hours instead of doing the work again.",
        ),
    ] = None,
) -> None:
    """Claim the key for this request, or answer from the request that claimed it first."""
    if idempotency_key is None:
        return
    fingerprint = await _fingerprint(request)
    existing = await run_db(
        lambda s: idempotency.claim(
            s, principal.domain_id, principal.user_id, idempotency_key, fingerprint
        )
    )
    if existing is None:
        request.state.idempotency = _Claim(principal.domain_id, principal.user_id, idempotency_key)
        return
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if existing.response is None:
        raise IdempotencyKeyInFlight()
    raise _Replay(existing.response)


async def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode() + b"\0")
    if request.headers.get("content-type", "").startswith("multipart/"):
        # A streamed upload is read once, by the route: its declared size stands in for it.
        digest.update(request.headers.get("content-length", "").encode())
    else:
        digest.update(await request.body())
    return digest.hexdigest()


_CLAIM = Depends(idempotency_claim)


class IdempotentRoute(APIRoute):
    """A route whose POST honours `Idempotency-Key` (see the module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {str(m).upper() for m in kwargs.get("methods") or ()}
        self.idempotent = "POST" in methods
        dependencies = list(kwargs.get("dependencies") or [])
        if self.idempotent and not any(d.dependency is idempotency_claim for d in dependencies):
            # Re-created when a parent router includes this one: claim once, not twice.
            kwargs["dependencies"] = [_CLAIM, *dependencies]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.idempotent:
            return handler

        async def idempotent_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except _Replay as replay:
                return _replayed(replay.stored)
            except BaseException:
                await _settle(request, None)
                raise
            await _settle(request, response)
            return response

        return idempotent_handler


def _replayed(stored: StoredResponse) -> Response:
    return Response(
        content=stored.body,
        status_code=stored.status_code,
        media_type=stored.media_type,
        headers={REPLAYED_HEADER: "true"},
    )


async def _settle(request: Request, response: Response | None) -> None:
    """Keep a replayable response for the claim this request holds, or release the claim."""
    claim: _Claim | None = getattr(request.state, "idempotency", None)
    if claim is None:
        return
    body = getattr(response, "body", None)
    keep = response is not None and response.status_code < 500 and isinstance(body, bytes)
    with anyio.CancelScope(shield=True):  # a client that hung up must not strand the claim
        try:
            if keep:
                assert response is not None and isinstance(body, bytes)
                stored = StoredResponse(response.status_code, response.media_type, body)
                await run_db(
                    lambda s: idempotency.complete(
                        s, claim.domain_id, claim.user_id, claim.key, stored
                    )
                )
            else:
                await run_db(
                    lambda s: idempotency.release(s, claim.domain_id, claim.user_id, claim.key)
                )
        except Exception as exc:  # the answer stands; the claim ends as an abandoned one
            log.warning("idempotency.settle_failed", error_type=type(exc).__name__)
