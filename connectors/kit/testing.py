"""An in-process `RunContext` for connector tests and `check` calls outside a job.

Workers provide the real context (heartbeats to the job row, Redis-backed limiters, uploads read
from PostgreSQL). This one records log lines in memory and reads uploads from local files.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from connectors.base import LevelLogger, RateLimiter
from records import LeadRecord
from records.normalize import suppression_keys


@dataclass
class RecordingLogger(LevelLogger):
    lines: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def _add(self, level: str, event: str, fields: dict[str, Any]) -> None:
        self.lines.append((level, event, fields))

    def events(self, level: str | None = None) -> list[str]:
        return [e for lvl, e, _ in self.lines if level is None or lvl == level]


class _NoLimit:
    def acquire(self, cost: int = 1) -> None:
        return None


@dataclass
class LocalRunContext:
    job_id: str = "local-job"
    data_source_id: str = "local-source"
    sync_state: dict[str, Any] = field(default_factory=dict)
    credit_budget: int | None = None
    log: RecordingLogger = field(default_factory=RecordingLogger)
    uploads: dict[str, Path] = field(default_factory=dict)
    #: builds a limiter for (name, limit, period_s); default: no limit
    limiter_factory: Callable[[str, int, float], RateLimiter] | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    heartbeats: int = 0
    waited_s: float = 0.0
    saved_config: list[dict[str, str | int | None]] = field(default_factory=list)
    #: normalised identity keys (`email:…`, `li:…`, `ext:<provider>:…`) or `domain:…` keys
    #: the domain suppresses
    suppress: set[str] = field(default_factory=set)
    #: balances reported by usage headers, oldest first
    balances: list[int] = field(default_factory=list)

    def heartbeat(self) -> None:
        self.heartbeats += 1

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    def wait(self, seconds: float) -> None:
        self.waited_s += max(0.0, seconds)
        deadline = time.monotonic() + max(0.0, seconds)
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.heartbeat()
            self.stop_event.wait(min(left, 1.0))

    def rate_limiter(self, name: str, limit: int, period_s: float) -> RateLimiter:
        if self.limiter_factory is None:
            return _NoLimit()
        return self.limiter_factory(name, limit, period_s)

    def open_upload(self, file_id: str) -> IO[bytes]:
        return self.uploads[file_id].open("rb")

    def suppressed(self, records: Sequence[LeadRecord], provider: str) -> list[bool]:
        return [bool(self.suppress & set(suppression_keys(r, provider))) for r in records]

    def report_balance(self, remaining: int) -> None:
        self.balances.append(remaining)

    def save_config(self, changes: Mapping[str, str | int | None]) -> None:
        """Recorded in `saved_config`, newest last (a job's context stores them on the source)."""
        self.saved_config.append(dict(changes))
