"""Sliding-window rate limits in Redis, shared by every API replica.

Each limited key is a sorted set of attempt timestamps; one Lua script drops the ones older
than the window, counts the rest and either records the attempt or answers how long until the
oldest leaves the window. The script reads Redis's clock, so replicas' clocks need not agree.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass
from typing import cast

import redis

from api.problems import TooManyRequests

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


@dataclass(frozen=True)
class LoginLimits:
    """Attempts against one account, and from one client address (spraying many accounts)."""

    per_email: Limit = Limit(attempts=10, window_s=900)
    per_ip: Limit = Limit(attempts=100, window_s=900)


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
