"""Committing a job move, then ringing its queue: shared by the job and schedule routes.

Enqueue only after the row a message names is committed (STYLE, after Polar): a worker that
took the message first would find the job still `pending`. A lost ring is harmless; the reaper
re-sends it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from models.job_states import Moved
from runtime.logging import get_logger
from workers.enqueue import enqueue_job

log = get_logger(__name__)


def enqueue_after_commit(session: Session, moved: Moved) -> None:
    """Commit the move, then ring the queue's doorbell (a lost ring is re-sent by the reaper)."""
    session.commit()
    if moved.status != "queued":
        return
    try:
        enqueue_job(moved.id, moved.queue)
    except Exception as exc:  # broker errors vary by backend; the job row is already safe
        log.warning("job.enqueue_failed", job_id=str(moved.id), queue=moved.queue, error=str(exc))
