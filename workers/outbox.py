"""The retry policy of outbox rows (webhook messages, queued mail): exponential backoff.

Delivery state lives on the row (`models.outbox`); a retry is the same actor's message sent
again with a delay. Doubling from a small base reaches a long outage's end with few attempts,
and jitter keeps endpoints that failed together from being retried together.
"""

from __future__ import annotations

import random


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1-based): `base_s` doubling per attempt, capped at
    `max_s`, with ±20 % jitter."""
    delay: float = min(max_s, base_s * 2 ** max(0, attempt - 1))
    jitter: float = (rng or random).uniform(0.8, 1.2)
    return delay * jitter
