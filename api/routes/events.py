"""`GET /events`: a live SSE feed of the domain's lead, campaign, data source, campaign metric and
job status changes and the caller's notifications, so a dashboard updates without polling; lead,
campaign and data source events resume after `Last-Event-ID` (`api.live`). Fed by the process's
one LISTEN connection.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from sse_starlette import EventSourceResponse

from api import live, sse
from api.deps import StreamAccessDep
from api.problems import problem_responses

router = APIRouter(prefix="/events", tags=["events"])


@router.get(
    "",
    responses={
        **problem_responses(404),
        200: {
            "content": {"text/event-stream": {}},
            "description": "`ready`, then `lead.*`, `campaign.*`, `data_source.*` (with ids), "
            "`campaign_metrics`, `job_status`, `notification` and `resync` events; "
            "`revoked` (the last) when the caller lost access",
        },
    },
)
async def stream_events(
    access: StreamAccessDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Replay the log's events after this id"),
    ] = None,
) -> EventSourceResponse:
    """Server-sent events for the domain while the connection stays open and the caller keeps
    access (a revoked key or a removed member gets `revoked`). Lead, campaign and data source
    events carry an `id`: reconnecting with `Last-Event-ID` replays the ones after it."""
    principal = access.principal
    return EventSourceResponse(
        sse.domain_events(
            principal.user_id,
            principal.domain_id,
            access.still_allowed,
            live.resume_after(last_event_id),
            principal.client_ids,
            restricted=principal.role == "member",
        ),
        ping=sse.KEEPALIVE_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
