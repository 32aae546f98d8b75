"""Sliding-window rate limits and login back-off in Redis, shared by every API replica.

Each limited key is a sorted set of attempt timestamps; one Lua script drops the ones older
than the window, counts the rest and either records the attempt or answers how long until the
oldest leaves the window. The script reads Redis's clock, so replicas' clocks need not agree.

Failed sign-ins back off per (email, client address), not per account (issue 14): a global
lock let anyone lock a user out for 15 minutes with ten wrong passwords. After
`free_failures` failures from one address, that address waits `backoff_base_s`, doubling with
each further failure up to `backoff_max_s`; a success clears it. Spraying many accounts from
one address still meets the per-address window. No CAPTCHA: waiting is the only cost.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import redis

from api.problems import NotAuthenticated, TooManyRequests

_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


@dataclass(frozen=True)
class Limit:
    """At most `attempts` within any `window_s` seconds."""

    attempts: int
    window_s: int


_BACKOFF_CHECK = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local until_ms = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if until_ms > now then
  return until_ms - now
end
return 0
"""

_BACKOFF_FAIL = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local free, base = tonumber(ARGV[1]), tonumber(ARGV[2])
local cap, forget = tonumber(ARGV[3]), tonumber(ARGV[4])
local failures = redis.call('HINCRBY', KEYS[1], 'n', 1)
local wait = 0
if failures >= free then
  wait = math.min(base * 2 ^ (failures - free), cap)
end
redis.call('HSET', KEYS[1], 'until', now + wait)
redis.call('PEXPIRE', KEYS[1], math.floor(forget + wait))
return math.floor(wait)
"""


@dataclass(frozen=True)
class LoginLimits:
    """Sign-in back-off per (email, client address); attempts from one address (spraying many
    accounts); password-reset requests per email (mail bombing)."""

    per_email: Limit = Limit(attempts=10, window_s=900)
    per_ip: Limit = Limit(attempts=100, window_s=900)
    free_failures: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 900.0
    #: failures older than this (after the last one) are forgotten
    forget_after_s: float = 3600.0


def hit(client: redis.Redis, key: str, limit: Limit) -> int:
    """Record an attempt; 0 when allowed, else the seconds to wait (nothing recorded)."""
    window_ms, attempts, member = str(limit.window_s * 1000), str(limit.attempts), uuid.uuid4().hex
    wait_ms = int(cast(int, client.eval(_SCRIPT, 1, key, window_ms, attempts, member)))
    return 0 if wait_ms <= 0 else max(1, math.ceil(wait_ms / 1000))


def _key(scope: str, kind: str, value: str) -> str:
    # Hashed so that emails (personal data) never sit in Redis as key names.
    return f"dashin:ratelimit:{scope}:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def check_attempt(
    client: redis.Redis, scope: str, limits: LoginLimits, *, email: str, ip: str
) -> None:
    """Raise `TooManyRequests` when this client address or this email is over its limit."""
    for kind, value, limit in (("ip", ip, limits.per_ip), ("email", email, limits.per_email)):
        wait = hit(client, _key(scope, kind, value.lower()), limit)
        if wait:
            raise TooManyRequests(f"too many {scope} attempts; retry later", retry_after=wait)


def _pair_key(email: str, ip: str) -> str:
    return _key("login", "email-ip", f"{email.strip().lower()}\x00{ip}")


@contextmanager
def login_attempt(
    client: redis.Redis, limits: LoginLimits, *, email: str, ip: str
) -> Iterator[None]:
    """Guard one sign-in: refuse (`TooManyRequests`) while this address is over its window or
    this (email, address) pair is backing off; a `NotAuthenticated` inside counts as a failure
    (and is re-raised), a success clears the pair's failures."""
    wait = hit(client, _key("login", "ip", ip.lower()), limits.per_ip)
    pair = _pair_key(email, ip)
    if not wait:
        wait_ms = int(cast(int, client.eval(_BACKOFF_CHECK, 1, pair)))
        wait = 0 if wait_ms <= 0 else max(1, math.ceil(wait_ms / 1000))
    if wait:
        raise TooManyRequests("too many login attempts; retry later", retry_after=wait)
    try:
        yield
    except NotAuthenticated:
        client.eval(
            _BACKOFF_FAIL,
            1,
            pair,
            str(limits.free_failures),
            str(int(limits.backoff_base_s * 1000)),
            str(int(limits.backoff_max_s * 1000)),
            str(int(limits.forget_after_s * 1000)),
        )
        raise
    client.delete(pair)
