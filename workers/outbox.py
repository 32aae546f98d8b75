"""What the outbox actors (webhook deliveries, mail) share: how they are declared and the
backoff their retries follow.

Delivery state lives on the row (`models.outbox`), so the actors take no Dramatiq retries: a
retry is the same actor's message sent again with a delay. Doubling from a small base reaches
a long outage's end with few attempts, and jitter keeps endpoints that failed together from
being retried together.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

import dramatiq

from workers.enqueue import OUTBOX_ACTORS


def outbox_actor(
    broker: dramatiq.Broker,
    kind: str,
    handle: Callable[[uuid.UUID], object],
    time_limit_s: float,
) -> dramatiq.Actor[[str], None]:
    """Declare the actor for one outbox kind (`webhooks.deliver`, `mail.send`) on `broker`."""
    actor_name, queue = OUTBOX_ACTORS[kind]

    def run(row_id: str) -> None:
        handle(uuid.UUID(row_id))

    return dramatiq.Actor(
        run,
        broker=broker,
        actor_name=actor_name,
        queue_name=queue,
        priority=0,
        options={"max_retries": 0, "time_limit": int(time_limit_s * 1000)},
    )


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1-based): `base_s` doubling per attempt, capped at
    `max_s`, with ±20 % jitter."""
    delay: float = min(max_s, base_s * 2 ** max(0, attempt - 1))
    jitter: float = (rng or random).uniform(0.8, 1.2)
    return delay * jitter
