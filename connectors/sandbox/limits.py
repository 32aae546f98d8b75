"""Rate-limit windows and request statistics shared by the emulators.

A `Window` allows `limit` requests per `period_s`. Sliding windows (the default) keep the times
of the last `limit` accepted requests: a request is over the limit when `limit` requests were
accepted in the `period_s` before it. Fixed windows (Apollo documents per-minute/hour/day
windows) count requests since the window opened. A request arriving over the limit is answered
429, is *not* recorded as usage and increments `violations`, so a test can assert that a well
behaved client never exceeded the limit (`violations == 0`).

`Stats` counts requests by status and path and keeps the most recent requests in `log`.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass


class Window:
    """A rate limit; callers hold the emulator lock around `is_full` and `record`."""

    def __init__(
        self,
        name: str,
        limit: int,
        period_s: float,
        *,
        fixed: bool = False,
        paths: frozenset[str] | None = None,
        wall: bool = False,
        opened_at: float = 0.0,
    ) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and period_s > 0")
        self.name = name
        self.limit = limit
        self.period_s = period_s
        self.fixed = fixed
        self.paths = paths
        #: measured in wall-clock time, so fixed daily windows turn over at midnight UTC
        self.wall = wall
        self.violations = 0
        self.accepted = 0
        self._times: deque[float] = deque(maxlen=limit)
        #: a fixed window's first opening (clock time); later ones follow every `period_s`
        self._opened = opened_at
        self._count = 0

    def _roll(self, now: float) -> None:
        if self.fixed and now - self._opened >= self.period_s:
            elapsed = now - self._opened
            self._opened += (elapsed // self.period_s) * self.period_s
            self._count = 0

    def usage(self, now: float) -> int:
        if self.fixed:
            self._roll(now)
            return self._count
        cutoff = now - self.period_s
        return sum(1 for t in self._times if t > cutoff)

    def remaining(self, now: float) -> int:
        return max(0, self.limit - self.usage(now))

    def is_full(self, now: float) -> bool:
        if self.fixed:
            self._roll(now)
            return self._count >= self.limit
        return len(self._times) >= self.limit and now - self._times[0] < self.period_s

    def reset_in(self, now: float) -> float:
        """Seconds until one more request would be accepted (0 when it would be now)."""
        if self.fixed:
            self._roll(now)
            return self._opened + self.period_s - now if self._count >= self.limit else 0.0
        if len(self._times) < self.limit:
            return 0.0
        return max(0.0, self._times[0] + self.period_s - now)

    def record(self, now: float) -> None:
        self.accepted += 1
        if self.fixed:
            self._roll(now)
            self._count += 1
        else:
            self._times.append(now)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    number: int
    method: str
    path: str
    query: str
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


class Stats:
    """Thread-safe request counters; `log` holds the last `keep` finished requests.

    `in_flight` / `peak_in_flight` let a test assert a client's concurrency.
    """

    def __init__(self, keep: int = 10_000) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.by_status: Counter[int] = Counter()
        self.by_path: Counter[str] = Counter()
        self.log: deque[LoggedRequest] = deque(maxlen=keep)

    def begin(self) -> int:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return self.requests

    def end(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.in_flight -= 1
            self.by_status[entry.status] += 1
            self.by_path[entry.path] += 1
            self.log.append(entry)

    def requests_to(self, path: str) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.log if r.path == path]

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.peak_in_flight = self.in_flight
            self.by_status.clear()
            self.by_path.clear()
            self.log.clear()
