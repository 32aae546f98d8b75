"""The one way the API and the scheduler put a job on a queue.

Call after the transaction that moved the job to `queued` has committed: a worker that picks the
message up must see the row. The message carries only the job id; a lost message is re-sent by
the reaper, a duplicate is harmless (only one runner can acquire a job).
"""

from __future__ import annotations

import uuid

import dramatiq

from runtime.broker import get_broker

ACTOR_NAME = "jobs.run"


def job_message(job_id: uuid.UUID | str, queue: str) -> dramatiq.Message[None]:
    return dramatiq.Message(
        queue_name=queue, actor_name=ACTOR_NAME, args=(str(job_id),), kwargs={}, options={}
    )


def enqueue_job(job_id: uuid.UUID | str, queue: str, broker: dramatiq.Broker | None = None) -> None:
    target = broker or get_broker()
    target.declare_queue(queue)
    target.enqueue(job_message(job_id, queue))
