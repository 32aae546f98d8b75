"""Ringing a job move's queue once it is committed: shared by the job and schedule routes.

Enqueue only after the row a message names is committed (STYLE, after Polar): a worker that
took the message first would find the job still `pending`. A lost ring is harmless; the reaper
re-sends it.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from models.job_states import Moved
from runtime.logging import get_logger
from workers.enqueue import enqueue_job

log = get_logger(__name__)


def enqueue_after_commit(session: Session, moved: Moved) -> None:
    """Ring the queue's doorbell once the request's transaction commits (a lost ring is re-sent
    by the reaper). The route does not commit itself: its audit row (`api.audit`) and anything
    else it writes after the move commit in the same transaction; a rollback rings nothing."""
    if moved.status != "queued":
        return

    def ring(_: Session) -> None:
        try:
            enqueue_job(moved.id, moved.queue)
        except Exception as exc:  # broker errors vary by backend; the job row is already safe
            log.warning(
                "job.enqueue_failed", job_id=str(moved.id), queue=moved.queue, error=str(exc)
            )

    event.listen(session, "after_commit", ring, once=True)
