"""`GET /events`: a live SSE feed of job status changes in the domain and the caller's
notifications, so a dashboard updates without polling. Fed by the process's one LISTEN connection.
"""

from __future__ import annotations

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from api import sse
from api.deps import StreamReaderDep
from api.problems import problem_responses

router = APIRouter(prefix="/events", tags=["events"])


@router.get(
    "",
    responses={
        **problem_responses(404),
        200: {
            "content": {"text/event-stream": {}},
            "description": "`ready`, then `job_status`, `notification` and `resync` events",
        },
    },
)
async def stream_events(principal: StreamReaderDep) -> EventSourceResponse:
    """Server-sent events for the domain (job status changes, notifications) while the connection
    stays open."""
    return EventSourceResponse(
        sse.domain_events(principal.user_id, principal.domain_id),
        ping=sse.KEEPALIVE_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
