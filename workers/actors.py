"""The `jobs.run` actor, declared on an explicit broker (no import-time global broker).

No Dramatiq retries (the job row owns retry state: `attempts`, the reaper) and no time limit
(long scrapes heartbeat instead). One actor serves every per-connector queue: messages are
copies with the connector's queue name, and a worker looks actors up by name.
"""

from __future__ import annotations

import uuid

import dramatiq

from workers.enqueue import ACTOR_NAME, enqueue_job
from workers.runner import Runner


def register_actors(broker: dramatiq.Broker, runner: Runner) -> dramatiq.Actor[[str], None]:
    def run_job(job_id: str) -> None:
        message = dramatiq.middleware.CurrentMessage.get_current_message()
        if runner.shutdown.is_set():
            # Fetched while this worker is stopping: pass it on instead of starting.
            enqueue_job(job_id, message.queue_name if message else "default")
            return
        runner.run(uuid.UUID(job_id))

    return dramatiq.Actor(
        run_job,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name="default",
        priority=0,
        options={"max_retries": 0, "time_limit": float("inf")},
    )
