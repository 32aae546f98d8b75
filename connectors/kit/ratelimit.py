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

The provider counts *arrivals*, which come some time after the grant: a worker can be
descheduled between the two (measured on a loaded 2-core machine: grant to arrival p50 1.3 ms,
p99 24 ms, max 52 ms). If an early request of one window arrives late and the request that
reuses its slot arrives early, the provider sees `limit + 1` requests in one window. So:

* a grant is *settled* once its response is in (`settling()`, used by `connectors.kit.http`): its
  entry is re-stamped with the Redis time of the settlement, which is after the provider's
  arrival, so the slot frees exactly one window after the arrival whatever the delay, and a
  slot costs `period_s` plus the request's round trip instead of a guessed margin;
* until then (and for good when nobody settles: a worker killed mid-request, a caller outside
  `connectors.kit.http`) the entry stands `margin_s` in the future, so an unsettled slot frees
  `period_s + margin_s` after its grant. The default margin, `min(0.05, period_s / 20)`, covers
  the delay measured above on windows of a second or more and never costs more than 5%.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass

import redis

from connectors.errors import RateLimited, TransientError

__all__ = [
    "RedisRateLimiter",
    "WindowLimit",
    "default_margin_s",
    "limits_from_headers",
    "rate_limit_key",
    "settling",
]

# KEYS[1] = sorted set of grant times (µs), KEYS[2] = member sequence
# ARGV = limit, window (µs), cost, margin (µs)  →  {1, last member} granted | {0, wait µs} refused
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local margin = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + cost <= limit then
  local seq = redis.call('INCRBY', KEYS[2], cost)
  for i = 1, cost do
    redis.call('ZADD', KEYS[1], now + margin, seq - cost + i)
  end
  local ttl = math.ceil((window + margin) / 1000) + 1000
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {1, seq}
end
local rank = used + cost - limit - 1
local oldest = redis.call('ZRANGE', KEYS[1], rank, rank, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
"""

# KEYS as above; ARGV = window (µs), first member, last member. Re-stamps the grants with now,
# re-adding any that already aged out (a request slower than the window): the provider saw it
# no later than now, so counting it from now is the safe side.
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for member = tonumber(ARGV[2]), tonumber(ARGV[3]) do
  redis.call('ZADD', KEYS[1], now, member)
end
local ttl = math.ceil(tonumber(ARGV[1]) / 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""

#: a wait that ends this much earlier than asked was cut short (the job is stopping)
_EARLY_S = 0.005
#: the unsettled margin: grant-to-arrival delay covered, and its most a window pays for it
_MAX_MARGIN_S, _MARGIN_FRACTION = 0.05, 0.05

_Grant = tuple["RedisRateLimiter", int, int]  # limiter, first member, last member
_pending: ContextVar[list[_Grant] | None] = ContextVar("dashin_rate_limit_grants", default=None)


def default_margin_s(period_s: float) -> float:
    """Margin of an unsettled grant: 50 ms (the delay measured), at most 5% of the window."""
    return min(_MAX_MARGIN_S, _MARGIN_FRACTION * period_s)


def rate_limit_key(data_source_id: str, name: str) -> str:
    """The Redis key of a data source's limiter `name`; braces keep its keys in one cluster slot."""
    return f"dashin:rl:{{{data_source_id}}}:{name}"


def _sequence_key(key: str) -> str:
    # Same cluster slot as `key`: reuse its hash tag, or make the whole key the tag.
    tag = re.search(r"\{([^}]+)\}", key)
    return f"{key}:seq" if tag else f"{{{key}}}:seq"


@contextmanager
def settling() -> Iterator[None]:
    """Settle, on exit, every grant this thread takes inside the block (`RedisRateLimiter`).

    Wrap one request: the limiter's `acquire` and the call that returns its response. Works
    through any wrapper around the limiters (e.g. several windows that must all grant), since
    the grants are collected per thread (context), not passed around.
    """
    grants: list[_Grant] = []
    token = _pending.set(grants)
    try:
        yield
    finally:
        _pending.reset(token)
        for limiter, first, last in grants:
            limiter.settle(first, last)


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
        margin_s: float | None = None,
    ) -> None:
        margin_s = default_margin_s(period_s) if margin_s is None else margin_s
        if limit < 1 or period_s <= 0 or margin_s < 0:
            raise ValueError("limit must be >= 1, period_s > 0 and margin_s >= 0")
        self.key = key
        self.limit = limit
        self.period_s = period_s
        self.margin_s = margin_s
        self.max_wait_s = max_wait_s
        self._wait = wait
        self._window_us = math.ceil(period_s * 1_000_000)
        self._margin_us = math.ceil(margin_s * 1_000_000)
        self._keys = [key, _sequence_key(key)]
        self._script = redis.register_script(_ACQUIRE)
        self._settle = redis.register_script(_SETTLE)

    def try_acquire(self, cost: int = 1) -> float:
        """Take `cost` grants now and answer 0.0, or take nothing and answer the seconds to wait."""
        if not 1 <= cost <= self.limit:
            raise ValueError(f"cost {cost} must be between 1 and the limit {self.limit}")
        try:
            granted, answer = self._script(
                keys=self._keys, args=[self.limit, self._window_us, cost, self._margin_us]
            )
        except redis.RedisError as exc:
            raise TransientError(f"rate limiter unavailable: {type(exc).__name__}") from exc
        if not int(granted):
            return max(int(answer), 1) / 1_000_000
        grants = _pending.get()
        if grants is not None:
            grants.append((self, int(answer) - cost + 1, int(answer)))
        return 0.0

    def acquire(self, cost: int = 1) -> None:
        """Block until `cost` requests may go out; `RateLimited` if the wait exceeds `max_wait_s`.

        One wait per refusal, for exactly the time the script computed (no polling, no added
        jitter: the script is atomic, so when several workers wake for one slot, one takes it
        and the others get their next exact wait). Also `RateLimited` when the wait function
        returns early (a job context's `wait` does so when the job is stopping): the caller
        should stop rather than spin on the limiter.
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

    def settle(self, first: int, last: int) -> None:
        """Re-stamp grants `first..last` with now: their request has been answered.

        Best effort: if Redis is unreachable the grants keep their margin, which is safe.
        """
        with suppress(redis.RedisError):
            self._settle(keys=self._keys, args=[self._window_us, first, last])


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
