"""Scheduler settings that `runtime.settings` does not carry, read from the environment.

They live here rather than in `runtime/settings.py` because only the scheduler process reads them;
they follow the same `DASHIN_*` naming so `dashin config` can adopt them later.

| variable | default | meaning |
| --- | --- | --- |
| `DASHIN_MISFIRE_GRACE_S` | 300 | a missed slot older than this is dropped, not fired late |
| `DASHIN_SCHEDULER_RESYNC_S` | 30 | full re-read of the schedules table (safety net for NOTIFY) |
| `DASHIN_SCHEDULER_STANDBY_POLL_S` | 1 | how often a standby retries the leader lock |
| `DASHIN_SCHEDULER_MAX_IDLE_S` | 1 | longest wait between two ticks (also the stop latency) |
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from runtime.errors import ConfigurationError

#: Advisory-lock key of the scheduler leader: the first 8 bytes of sha1("dashin.scheduler"), so
#: it cannot collide with a small hand-picked key another component might use.
LEADER_LOCK_KEY = int.from_bytes(hashlib.sha1(b"dashin.scheduler").digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    misfire_grace_s: float = 300.0
    resync_interval_s: float = 30.0
    standby_poll_s: float = 1.0
    max_idle_s: float = 1.0


_ENV = {
    "misfire_grace_s": "DASHIN_MISFIRE_GRACE_S",
    "resync_interval_s": "DASHIN_SCHEDULER_RESYNC_S",
    "standby_poll_s": "DASHIN_SCHEDULER_STANDBY_POLL_S",
    "max_idle_s": "DASHIN_SCHEDULER_MAX_IDLE_S",
}


def load_scheduler_config(environ: Mapping[str, str] | None = None) -> SchedulerConfig:
    """Read the `DASHIN_*` scheduler variables; a bad value names its variable."""
    env = os.environ if environ is None else environ
    values: dict[str, float] = {}
    for field, name in _ENV.items():
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(f"{name}: expected a number of seconds, got {raw!r}") from None
        if value <= 0:
            raise ConfigurationError(f"{name}: must be greater than 0, got {raw!r}")
        values[field] = value
    return replace(SchedulerConfig(), **values)
