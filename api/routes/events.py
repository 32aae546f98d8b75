"""`GET /events`: a live SSE feed of job status changes in the domain and the caller's
notifications, so a dashboard updates without polling. Fed by the process's one LISTEN connection.
"""

from __future__ import annotations

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from api import sse
from api.deps import StreamAccessDep
from api.problems import problem_responses

router = APIRouter(prefix="/events", tags=["events"])


@router.get(
    "",
    responses={
        **problem_responses(404),
        200: {
            "content": {"text/event-stream": {}},
            "description": "`ready`, then `job_status`, `notification` and `resync` events; "
            "`revoked` (the last) when the caller lost access",
        },
    },
)
async def stream_events(access: StreamAccessDep) -> EventSourceResponse:
    """Server-sent events for the domain (job status changes, notifications) while the connection
    stays open and the caller keeps access (a revoked key or a removed member gets `revoked`)."""
    principal = access.principal
    return EventSourceResponse(
        sse.domain_events(principal.user_id, principal.domain_id, access.still_allowed),
        ping=sse.KEEPALIVE_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
