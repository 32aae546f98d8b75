"""The shared Redis rate limiter against a real Redis: exact waits, no leaks, and fidelity.

The fidelity test is the one that matters: four workers share one limit against a local
counting server, and the server's own arrival times must never show more than `limit`
requests in any window of `period_s`, while throughput stays at 90% of the limit or more.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import ip_network
from multiprocessing.synchronize import Barrier as BarrierType

import pytest
import redis

from connectors import http
from connectors.errors import RateLimited, TransientError
from connectors.ratelimit import (
    RedisRateLimiter,
    WindowLimit,
    limits_from_headers,
    rate_limit_key,
)
from tests.connectors.test_http import LocalServer

LOCAL = [ip_network("127.0.0.1/32")]


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


def max_in_any_window(times: list[float], period_s: float) -> int:
    """The most arrivals inside any half-open window [t, t + period_s)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= period_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_key_helper_keeps_a_data_source_in_one_cluster_slot() -> None:
    assert rate_limit_key("ds-1", "search") == "dashin:rl:{ds-1}:search"


def test_grants_up_to_the_limit_then_answers_the_exact_wait(r: redis.Redis) -> None:
    limiter = RedisRateLimiter(r, "t:exact", limit=3, period_s=10.0, max_wait_s=0, margin_s=0)
    for _ in range(3):
        limiter.acquire()
    with pytest.raises(RateLimited) as exc:
        limiter.acquire()
    assert 9.9 < exc.value.retry_after <= 10.0


def test_cost_counts_as_several_requests(r: redis.Redis) -> None:
    limiter = RedisRateLimiter(r, "t:cost", limit=5, period_s=10.0, margin_s=0)
    assert limiter.try_acquire(3) == 0.0
    assert limiter.try_acquire(2) == 0.0
    assert 9.9 < limiter.try_acquire(1) <= 10.0
    with pytest.raises(ValueError, match="between 1 and the limit"):
        limiter.try_acquire(6)


def test_one_exact_wait_instead_of_polling(r: redis.Redis) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    limiter = RedisRateLimiter(r, "t:wait", limit=2, period_s=0.3, wait=sleep, margin_s=0)
    started = time.monotonic()
    for _ in range(3):
        limiter.acquire()
    assert len(waits) == 1
    assert 0.25 < waits[0] <= 0.3
    assert time.monotonic() - started >= 0.29


def test_a_wait_cut_short_raises_instead_of_spinning(r: redis.Redis) -> None:
    # A job context's wait() returns at once when the job is stopping.
    calls: list[float] = []
    limiter = RedisRateLimiter(r, "t:stop", limit=1, period_s=30.0, wait=calls.append)
    limiter.acquire()
    with pytest.raises(RateLimited) as exc:
        limiter.acquire()
    assert len(calls) == 1
    assert exc.value.retry_after > 29


def test_keys_expire_after_one_window(r: redis.Redis) -> None:
    key = rate_limit_key("ds-ttl", "search")
    RedisRateLimiter(r, key, limit=5, period_s=2.0).acquire()
    assert sorted(k.decode() for k in r.keys("dashin:rl:*")) == [key, key + ":seq"]
    for name in (key, key + ":seq"):
        assert 0 < r.pttl(name) <= 3_100


def test_a_killed_worker_leaks_no_slot(r: redis.Redis, redis_url: str) -> None:
    # Given a worker that takes every slot and is SIGKILLed before it could release anything
    code = (
        "import os, signal, redis\n"
        "from connectors.ratelimit import RedisRateLimiter\n"
        f"rl = RedisRateLimiter(redis.Redis.from_url({redis_url!r}), 't:kill', 2, 0.5)\n"
        "rl.acquire(); rl.acquire()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert proc.returncode == -9
    # When another worker asks for the full limit, it waits at most one window
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    limiter = RedisRateLimiter(r, "t:kill", 2, 0.5, wait=sleep)
    limiter.acquire()
    limiter.acquire()
    assert sum(waits) <= 0.55


def test_redis_down_is_transient() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    with pytest.raises(TransientError, match="rate limiter unavailable"):
        RedisRateLimiter(dead, "t:down", 1, 1.0).acquire()


def test_limits_from_apollo_headers() -> None:
    headers = {
        "x-rate-limit-minute": "200",
        "x-minute-usage": "12",
        "x-minute-requests-left": "188",
        "x-rate-limit-hourly": "400",
        "x-hourly-requests-left": "0",
        "content-type": "application/json",
    }
    assert limits_from_headers(headers) == [
        WindowLimit("minute", 200, 60.0, 188),
        WindowLimit("hourly", 400, 3600.0, 0),
    ]


def _fidelity_worker(
    redis_url: str, server_url: str, key: str, requests: int, start: BarrierType
) -> None:
    """One worker process: its own Redis connection and limiter, requests through the layer."""
    conn = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(conn, key, FIDELITY_LIMIT, FIDELITY_PERIOD_S, margin_s=0.1)
    with http.make_client(server_url, ssrf_allow=LOCAL) as client:
        client.get("/warm-up")  # connect before the clock starts
        start.wait(timeout=60)
        for _ in range(requests):
            limiter.acquire()
            granted = {"x-granted-at": repr(time.monotonic())}
            http.request(client, "GET", "/count", headers=granted, park_after_s=60)
    conn.close()


FIDELITY_LIMIT, FIDELITY_PERIOD_S = 20, 2.0


def test_shared_limit_fidelity_across_four_workers(redis_url: str) -> None:
    limit, period_s, per_worker, workers = FIDELITY_LIMIT, FIDELITY_PERIOD_S, 15, 4
    key = rate_limit_key("fidelity", "count")
    total = workers * per_worker
    # Given a counting server and four worker processes sharing one limit in Redis
    # (the 100 ms margin absorbs grant-to-arrival jitter on a busy machine)
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(workers)
    with LocalServer() as server:
        procs = [
            spawn.Process(
                target=_fidelity_worker, args=(redis_url, server.url, key, per_worker, start)
            )
            for _ in range(workers)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
        seen = server.seen("/count")
    assert [p.exitcode for p in procs] == [0] * workers
    assert len(seen) == total
    arrivals = sorted(s.at for s in seen)
    delays = [s.at - float(s.headers["x-granted-at"]) for s in seen]
    # Then no window of period_s ever saw more than the limit, measured where it counts
    closest = min(arrivals[i + limit] - arrivals[i] for i in range(total - limit))
    assert max_in_any_window(arrivals, period_s) <= limit, (
        f"{limit + 1} arrivals within {closest:.3f}s; grant-to-arrival delay up to "
        f"{max(delays):.3f}s"
    )
    # And the limit was used: each batch of `limit` went out one period after the previous
    # one (the rate the limiter grants at; the time a batch takes to send is the server's)
    batches = total // limit - 1
    throughput = batches * period_s / (arrivals[batches * limit] - arrivals[0])
    assert throughput >= 0.9, f"throughput {throughput:.0%} of the limit"
