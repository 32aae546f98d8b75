"""The job's logger: lines go to stdout (structlog, with job context) and into a buffer that
the runner commits with the next page or the heartbeat flushes (≤ 250 ms old, ≤ 100 lines).

Two threads write a job's lines (the runner with its transactions, the heartbeat between pages),
so whoever takes lines holds the writer's turn (`flushing`) until its transaction ends: lines
reach the table in the order they were logged. Without it a heartbeat that took `job.started`
could commit after the runner's `job.finish` (seen under load: a finished job whose last line
was `job.started`).

Volume stays bounded on million-record jobs: after `DEBUG_BUDGET` debug lines of one event
name, further ones are counted, not stored, and the count is reported once at the end.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from connectors.base import LevelLogger
from models.job_logs import LogLine
from runtime.logging import get_logger

DEBUG_BUDGET = 50
FLUSH_AGE_S = 0.25
FLUSH_LINES = 100


class JobLogBuffer(LevelLogger):
    def __init__(self, **context: Any) -> None:
        self._stdout = get_logger("dashin.job", **context)
        self._lock = threading.Lock()
        self._writer = threading.Lock()  # one taker at a time, held until its commit
        self._lines: list[LogLine] = []
        self._oldest: float | None = None
        self._debug_seen: Counter[str] = Counter()
        self.suppressed: Counter[str] = Counter()
        self._closed = False

    def close(self) -> None:
        """The run is over: lines logged from now on (an abandoned fetching thread's) reach
        stdout only, never the buffer no one will flush again."""
        with self._lock:
            self._closed = True

    def _add(self, level: str, event: str, fields: dict[str, Any]) -> None:
        message = str(fields.pop("message", "")) if "message" in fields else ""
        getattr(self._stdout, level)(event, **({"message": message} if message else {}), **fields)
        with self._lock:
            if self._closed:
                return
            if level == "debug":
                self._debug_seen[event] += 1
                if self._debug_seen[event] > DEBUG_BUDGET:
                    self.suppressed[event] += 1
                    return
            self._lines.append(LogLine(level, event, message, fields, datetime.now(UTC)))
            if self._oldest is None:
                self._oldest = time.monotonic()

    def take(self) -> list[LogLine]:
        """Hand over every buffered line (the caller writes them in its transaction)."""
        with self._lock:
            lines, self._lines, self._oldest = self._lines, [], None
            return lines

    @contextmanager
    def flushing(self) -> Iterator[list[LogLine]]:
        """Take every buffered line and hold the writer's turn while the caller writes them in
        its transaction; on an error the lines go back, ahead of newer ones. Enter this before
        the transaction begins (the other writer takes the same two locks in this order)."""
        with self._writer:
            lines = self.take()
            try:
                yield lines
            except BaseException:
                self.put_back(lines)
                raise

    def put_back(self, lines: list[LogLine]) -> None:
        """Return lines whose transaction rolled back, ahead of newer ones."""
        if not lines:
            return
        with self._lock:
            self._lines = lines + self._lines
            self._oldest = time.monotonic() if self._oldest is None else self._oldest

    def due(self) -> bool:
        with self._lock:
            if not self._lines:
                return False
            old = self._oldest is not None and time.monotonic() - self._oldest >= FLUSH_AGE_S
            return old or len(self._lines) >= FLUSH_LINES
