"""A rate limit shared by every worker: a sliding log in Redis, decided by one Lua script.

Why not Dramatiq's limiters (see NOTES.md): its fixed-window bucket lets up to twice the limit
through across a window boundary, and its concurrency slots stay taken when a worker is
SIGKILLed. Providers count requests as they arrive, so a 2x burst earns 429s or a ban.

The log is a sorted set of grant times (Redis server time, so worker clocks do not matter). One
atomic script drops entries older than the window, grants `cost` requests if they fit, and
otherwise answers the exact wait: the time until enough old entries leave the window. So no
window of `period_s` ever holds more than `limit` grants, there is nothing to release (a killed
worker's grants simply age out, and the keys expire after one window), and a caller sleeps once
for the computed time instead of polling.

`margin_s` lengthens the window a little: grants are spaced by `period_s + margin_s`, which
absorbs the jitter between the grant and the moment the provider sees the request.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis

from connectors.errors import RateLimited, TransientError

__all__ = [
    "RedisRateLimiter",
    "WindowLimit",
    "limits_from_headers",
    "rate_limit_key",
]

# KEYS[1] = sorted set of grant times (µs), KEYS[2] = member sequence
# ARGV = limit, window (µs), cost  →  {1, 0} granted | {0, wait µs} refused
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + cost <= limit then
  local seq = redis.call('INCRBY', KEYS[2], cost)
  for i = 1, cost do
    redis.call('ZADD', KEYS[1], now, seq - cost + i)
  end
  local ttl = math.ceil(window / 1000) + 1000
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {1, 0}
end
local rank = used + cost - limit - 1
local oldest = redis.call('ZRANGE', KEYS[1], rank, rank, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
"""

#: a wait that ends this much earlier than asked was cut short (the job is stopping)
_EARLY_S = 0.005


def rate_limit_key(data_source_id: str, name: str) -> str:
    """The Redis key of a data source's limiter `name`; braces keep its keys in one cluster slot."""
    return f"dashin:rl:{{{data_source_id}}}:{name}"


def _sequence_key(key: str) -> str:
    # Same cluster slot as `key`: reuse its hash tag, or make the whole key the tag.
    tag = re.search(r"\{([^}]+)\}", key)
    return f"{key}:seq" if tag else f"{{{key}}}:seq"


class RedisRateLimiter:
    """At most `limit` requests in any `period_s` window across every process sharing `key`."""

    def __init__(
        self,
        redis: redis.Redis,
        key: str,
        limit: int,
        period_s: float,
        *,
        wait: Callable[[float], None] = time.sleep,
        max_wait_s: float | None = None,
        margin_s: float = 0.05,
    ) -> None:
        if limit < 1 or period_s <= 0 or margin_s < 0:
            raise ValueError("limit must be >= 1, period_s > 0 and margin_s >= 0")
        self.key = key
        self.limit = limit
        self.period_s = period_s
        self.max_wait_s = max_wait_s
        self._wait = wait
        self._window_us = math.ceil((period_s + margin_s) * 1_000_000)
        self._keys = [key, _sequence_key(key)]
        self._script = redis.register_script(_ACQUIRE)

    def try_acquire(self, cost: int = 1) -> float:
        """Take `cost` grants now and answer 0.0, or take nothing and answer the seconds to wait."""
        if not 1 <= cost <= self.limit:
            raise ValueError(f"cost {cost} must be between 1 and the limit {self.limit}")
        try:
            granted, wait_us = self._script(
                keys=self._keys, args=[self.limit, self._window_us, cost]
            )
        except redis.RedisError as exc:
            raise TransientError(f"rate limiter unavailable: {type(exc).__name__}") from exc
        return 0.0 if int(granted) else max(int(wait_us), 1) / 1_000_000

    def acquire(self, cost: int = 1) -> None:
        """Block until `cost` requests may go out; `RateLimited` if the wait exceeds `max_wait_s`.

        Also `RateLimited` when the wait function returns early (a job context's `wait` does so
        when the job is stopping): the caller should stop rather than spin on the limiter.
        """
        while True:
            wait_s = self.try_acquire(cost)
            if wait_s <= 0:
                return
            if self.max_wait_s is not None and wait_s > self.max_wait_s:
                raise RateLimited(wait_s, f"rate limit {self.key}: next slot in {wait_s:.1f}s")
            started = time.monotonic()
            self._wait(wait_s)
            left = wait_s - (time.monotonic() - started)
            if left > _EARLY_S:
                raise RateLimited(left, f"rate limit {self.key}: wait interrupted")


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """A provider's advertised limit: `limit` requests per `period_s`, `remaining` in the window."""

    name: str
    limit: int | None
    period_s: float
    remaining: int | None


_WINDOWS = {
    "minute": 60.0,
    "hour": 3600.0,
    "hourly": 3600.0,
    "day": 86400.0,
    "daily": 86400.0,
    "24-hour": 86400.0,
}
_LIMIT_HEADER = re.compile(r"^x-rate-limit-(minute|hourly|hour|daily|day|24-hour)$")
_LEFT_HEADER = re.compile(r"^x-(minute|hourly|hour|daily|day|24-hour)-requests-left$")


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(float(value))
    except ValueError:
        return None


def limits_from_headers(headers: Mapping[str, str]) -> list[WindowLimit]:
    """Apollo-style per-window limits (`x-rate-limit-minute`, `x-minute-requests-left`, ...).

    A connector can size its shared limiter from the first response (e.g. the minute limit)
    instead of hard-coding a plan's numbers; the HTTP layer uses `remaining == 0` to time a 429.
    """
    limits: dict[str, int | None] = {}
    left: dict[str, int | None] = {}
    for raw_name, value in headers.items():
        name = raw_name.lower()
        if match := _LIMIT_HEADER.match(name):
            limits[match.group(1)] = _int(value)
        elif match := _LEFT_HEADER.match(name):
            left[match.group(1)] = _int(value)
    return [
        WindowLimit(window, limits.get(window), _WINDOWS[window], left.get(window))
        for window in sorted(limits.keys() | left.keys(), key=lambda w: _WINDOWS[w])
    ]
