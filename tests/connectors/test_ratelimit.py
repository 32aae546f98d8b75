"""The shared Redis rate limiter against a real Redis: exact waits, no leaks, and fidelity.

Fidelity is what matters, measured where the provider measures it: a local counting server's own
arrival times must never show more than `limit` requests in any window of `period_s` — with
threads and processes sharing one limit, and with requests held up between grant and arrival
(a worker descheduled on a busy machine) — while throughput stays close to the limit.
"""

from __future__ import annotations

import multiprocessing
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from ipaddress import ip_network
from multiprocessing.synchronize import Barrier as BarrierType
from typing import cast

import pytest
import redis

from connectors.errors import RateLimited, TransientError
from connectors.kit import http
from connectors.kit.ratelimit import (
    RedisRateLimiter,
    WindowLimit,
    default_margin_s,
    limits_from_headers,
    rate_limit_key,
    settling,
)
from connectors.kit.testing import LocalRunContext
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


def test_default_margin_is_50ms_and_at_most_5_percent_of_the_window(r: redis.Redis) -> None:
    assert default_margin_s(60.0) == default_margin_s(1.0) == 0.05
    assert default_margin_s(0.5) == pytest.approx(0.025)
    assert RedisRateLimiter(r, "t:m", 1, 2.0).margin_s == 0.05
    assert RedisRateLimiter(r, "t:m", 1, 2.0, margin_s=0.2).margin_s == 0.2
    with pytest.raises(ValueError, match="margin_s >= 0"):
        RedisRateLimiter(r, "t:m", 1, 2.0, margin_s=-0.01)


def test_an_unsettled_grant_holds_its_slot_for_the_window_plus_margin(r: redis.Redis) -> None:
    limiter = RedisRateLimiter(r, "t:unsettled", limit=1, period_s=10.0, margin_s=2.0)
    assert limiter.try_acquire() == 0.0
    assert 11.9 < limiter.try_acquire() <= 12.0


def test_a_settled_grant_frees_one_window_after_its_answer(r: redis.Redis) -> None:
    # Given a grant whose request takes 0.3 s (the margin, 2 s, is what it would have kept)
    limiter = RedisRateLimiter(r, "t:settled", limit=1, period_s=10.0, margin_s=2.0)
    with settling():
        limiter.acquire()
        time.sleep(0.3)  # the request in flight
    # Then the slot frees one window after the answer: not after grant + margin, nor the grant
    assert 9.9 < limiter.try_acquire() <= 10.0


def test_a_grant_settled_after_its_window_counts_again(r: redis.Redis) -> None:
    # Given a request slower than the window: its grant aged out while it was in flight
    limiter = RedisRateLimiter(r, "t:slow", limit=1, period_s=0.2, margin_s=0)
    with settling():
        limiter.acquire()
        time.sleep(0.3)
        assert limiter.try_acquire(1) == 0.0  # the slot was free again (and is taken)
    # Then once answered it is counted from the answer: the provider may have just seen it
    assert cast(int, r.zcard("t:slow")) == 2
    assert 0.15 < limiter.try_acquire() <= 0.2


def test_settling_collects_grants_through_wrappers_and_per_thread(r: redis.Redis) -> None:
    minute = RedisRateLimiter(r, "t:w1", limit=1, period_s=10.0, margin_s=5.0)
    hour = RedisRateLimiter(r, "t:w2", limit=1, period_s=20.0, margin_s=5.0)
    other = RedisRateLimiter(r, "t:w3", limit=1, period_s=10.0, margin_s=5.0)
    with settling():
        for limiter in (minute, hour):  # what Apollo's all-of-several-windows wrapper does
            limiter.acquire()
        thread = threading.Thread(target=other.acquire)  # another thread's grant: not ours
        thread.start()
        thread.join()
    assert 9.9 < minute.try_acquire() <= 10.0
    assert 19.9 < hour.try_acquire() <= 20.0
    assert 14.9 < other.try_acquire() <= 15.0


def test_settling_survives_redis_going_away() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    RedisRateLimiter(dead, "t:gone", 1, 1.0).settle(1, 1)  # best effort: the margin stays


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
    keys = cast(list[bytes], r.keys("dashin:rl:*"))
    assert sorted(k.decode() for k in keys) == [key, key + ":seq"]
    for name in (key, key + ":seq"):
        assert 0 < cast(int, r.pttl(name)) <= 3_100


def test_a_killed_worker_leaks_no_slot(r: redis.Redis, redis_url: str) -> None:
    # Given a worker that takes every slot and is SIGKILLed before it could release anything
    code = (
        "import os, signal, redis\n"
        "from connectors.kit.ratelimit import RedisRateLimiter\n"
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


class Delayed:
    """A limiter whose caller is held up after each grant, as a descheduled worker is."""

    def __init__(self, inner: RedisRateLimiter, delays: Iterator[float]) -> None:
        self.inner = inner
        self.delays = delays

    def acquire(self, cost: int = 1) -> None:
        self.inner.acquire(cost)
        time.sleep(next(self.delays))


@pytest.mark.parametrize("settled", [True, False])
def test_a_request_held_up_after_its_grant_never_puts_the_provider_over(
    r: redis.Redis, server: LocalServer, settled: bool
) -> None:
    # Given 2 per 0.5 s, no margin, and the first request held up 0.2 s between grant and send
    limiter = RedisRateLimiter(r, f"t:held:{settled}", limit=2, period_s=0.5, margin_s=0)
    delayed = Delayed(limiter, iter([0.2, 0.0, 0.0]))
    with http.make_client(server.url, ssrf_allow=LOCAL) as client:
        for _ in range(3):
            if settled:  # the HTTP layer settles the grant when the answer is in
                http.request(client, "GET", "/count", limiter=delayed)
            else:  # the control: the same grants, never settled
                delayed.acquire()
                http.request(client, "GET", "/count")
    arrivals = [s.at for s in server.seen("/count")]
    # Then settled grants keep every window of arrivals within the limit; unsettled ones do not
    # (the third request reuses the first one's slot 0.5 s after its grant, 0.3 s after it arrived)
    assert max_in_any_window(arrivals, 0.5) == (2 if settled else 3)


def test_threads_held_up_at_random_stay_within_the_limit(redis_url: str) -> None:
    # Given four threads sharing 5 per 0.5 s, each request held up 0-60 ms after its grant
    limit, period_s, per_thread = 5, 0.5, 10
    key = f"t:threads:{time.time()}"
    rng = random.Random(7)
    delays = [rng.uniform(0, 0.06) for _ in range(4 * per_thread)]

    def worker(url: str, mine: list[float]) -> None:
        conn = redis.Redis.from_url(redis_url)
        limiter = Delayed(RedisRateLimiter(conn, key, limit, period_s, margin_s=0), iter(mine))
        with http.make_client(url, ssrf_allow=LOCAL) as client:
            for _ in range(per_thread):
                http.request(client, "GET", "/count", limiter=limiter, park_after_s=60)
        conn.close()

    with LocalServer() as srv:
        threads = [
            threading.Thread(target=worker, args=(srv.url, delays[i::4]), daemon=True)
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        arrivals = [s.at for s in srv.seen("/count")]
    assert len(arrivals) == 4 * per_thread
    # Then no window of arrivals ever held more than the limit
    assert max_in_any_window(arrivals, period_s) == limit


def test_limiter_waits_spend_no_attempt_and_heartbeat(r: redis.Redis, server: LocalServer) -> None:
    # Given one request per 0.3 s, waited through the job context, and a single attempt each
    ctx = LocalRunContext()
    limiter = RedisRateLimiter(r, "t:budget", limit=1, period_s=0.3, wait=ctx.wait)
    with http.make_client(server.url, ssrf_allow=LOCAL) as client:
        for _ in range(4):
            response = http.request(
                client, "GET", "/count", ctx=ctx, limiter=limiter, max_attempts=1
            )
            assert response.status_code == 200
    # Then every request went out although three waited for the limiter, and waits heartbeat
    assert len(server.seen("/count")) == 4
    assert ctx.waited_s > 0.8
    assert ctx.heartbeats >= 3


def _fidelity_worker(
    redis_url: str, server_url: str, key: str, requests: int, start: BarrierType
) -> None:
    """One worker process: its own Redis connection and limiter, requests through the layer."""
    conn = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(conn, key, FIDELITY_LIMIT, FIDELITY_PERIOD_S)
    with http.make_client(server_url, ssrf_allow=LOCAL) as client:
        client.get("/warm-up")  # connect before the clock starts
        start.wait(timeout=60)
        for _ in range(requests):
            http.request(client, "GET", "/count", limiter=limiter, park_after_s=60)
    conn.close()


FIDELITY_LIMIT, FIDELITY_PERIOD_S = 20, 2.0


def test_shared_limit_fidelity_across_four_workers(redis_url: str) -> None:
    limit, period_s, per_worker, workers = FIDELITY_LIMIT, FIDELITY_PERIOD_S, 15, 4
    key = rate_limit_key(f"fidelity-{time.time()}", "count")
    total = workers * per_worker
    # Given a counting server and four worker processes sharing one limit in Redis, with the
    # default margin and grants settled by the HTTP layer
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
    # Then no window of period_s ever saw more than the limit, measured where it counts
    closest = min(arrivals[i + limit] - arrivals[i] for i in range(total - limit))
    assert max_in_any_window(arrivals, period_s) <= limit, (
        f"{limit + 1} arrivals within {closest:.3f}s"
    )
    # And the limit was used: each batch of `limit` went out one period after the previous
    # one (a slot costs the period plus the round trip to its answer, here milliseconds)
    batches = total // limit - 1
    throughput = batches * period_s / (arrivals[batches * limit] - arrivals[0])
    assert throughput >= 0.95, f"throughput {throughput:.0%} of the limit"
