"""Benchmark: how fast jobs obey control requests, and how fast an idle worker picks one up.

One real worker process (`python -m workers --queues synthetic --threads 2`) runs `synthetic`
jobs whose pages take about 20 ms to fetch (`delay_s=0.02`, 100 leads a page, each page one
committed transaction). Per trial, on a job that has committed at least two pages, after a
random 0-20 ms offset into the page:

* **pause → paused**: from calling the pause move (`models.job_states.pause` in its own
  transaction: what `POST /jobs/{id}/pause` runs, minus HTTP) to the `NOTIFY job_status` that
  carries `paused` arriving at a listener;
* **resume → first new page**: from the resume move + enqueue to the first page committed after
  it (the job's `pages` counter, read on each `job_logs` notification);
* **cancel → cancelled**: as pause.

Then **enqueue → running** for an idle worker: the worker has had nothing to do for 1-2 s (a
random gap), a queued job is enqueued, and the time until its `running` notification is taken.
The same is measured, interleaved trial by trial, for a bare Dramatiq worker with default
settings (`dramatiq.Worker(broker)`, Redis broker, default middleware) whose actor stamps the
arrival time; that is the reference the target is set against.

    python bench/control_latency.py                 # 40 control trials, 30 enqueue trials
    python bench/control_latency.py --trials 60 --json
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import common
import psycopg
import redis

TARGETS_MS = {"pause_p99": 300.0, "enqueue_p50": 50.0}


class Watcher:
    """LISTENs to job status and log notifications; waits for a job's row to satisfy a test."""

    def __init__(self, db_url: str) -> None:
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.conn.execute("LISTEN job_status")
        self.conn.execute("LISTEN job_logs")

    def row(self, job_id: uuid.UUID) -> tuple[str, int]:
        found = self.conn.execute(
            "SELECT status, pages FROM jobs WHERE id = %s", (job_id,)
        ).fetchone()
        assert found is not None
        return str(found[0]), int(found[1])

    def drain(self) -> None:
        for _ in self.conn.notifies(timeout=0, stop_after=10_000):
            pass

    def wait(self, job_id: uuid.UUID, test: Any, timeout: float = 30.0) -> float:
        """Block until test(status, pages); return time.perf_counter() when it was seen."""
        deadline = time.perf_counter() + timeout
        prefix = str(job_id)
        while True:
            status, pages = self.row(job_id)
            if test(status, pages):
                return time.perf_counter()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"job {job_id} stuck at {status}, {pages} pages")
            for note in self.conn.notifies(timeout=min(left, 0.5), stop_after=1):
                if note.payload.startswith(prefix):
                    break

    def close(self) -> None:
        self.conn.close()


def move(engine: Any, name: str, job_id: uuid.UUID) -> Any:
    from sqlalchemy.orm import Session

    from models import job_states

    with Session(engine) as session, session.begin():
        moved = getattr(job_states, name)(session, job_id)
    return moved


def queued_job(engine: Any, world: dict[str, uuid.UUID], **params: Any) -> uuid.UUID:
    from tests.factories import make_job

    job_id = make_job(engine, world["domain"], world["source"], params, world["user"])
    move(engine, "start", job_id)
    queued: uuid.UUID = job_id
    return queued


def control_trial(
    engine: Any, watcher: Watcher, world: dict[str, uuid.UUID], rng: random.Random
) -> dict[str, float]:
    from workers.enqueue import enqueue_job

    job_id = queued_job(engine, world, total=10**7, page_size=100, delay_s=0.02)
    enqueue_job(job_id, "synthetic")
    watcher.wait(job_id, lambda s, p: s == "running" and p >= 2)
    time.sleep(rng.uniform(0, 0.02))
    watcher.drain()
    t0 = time.perf_counter()
    move(engine, "pause", job_id)
    t_paused = watcher.wait(job_id, lambda s, p: s == "paused")
    _, pages_at_pause = watcher.row(job_id)
    watcher.drain()
    t1 = time.perf_counter()
    move(engine, "resume", job_id)
    enqueue_job(job_id, "synthetic")
    t_page = watcher.wait(job_id, lambda s, p: p > pages_at_pause)
    watcher.wait(job_id, lambda s, p: p >= pages_at_pause + 2)
    time.sleep(rng.uniform(0, 0.02))
    watcher.drain()
    t2 = time.perf_counter()
    move(engine, "cancel", job_id)
    t_cancelled = watcher.wait(job_id, lambda s, p: s == "cancelled")
    return {
        "pause_ms": (t_paused - t0) * 1000,
        "resume_first_page_ms": (t_page - t1) * 1000,
        "cancel_ms": (t_cancelled - t2) * 1000,
    }


def enqueue_trial_dashin(engine: Any, watcher: Watcher, world: dict[str, uuid.UUID]) -> float:
    from workers.enqueue import enqueue_job

    job_id = queued_job(engine, world, total=1, page_size=1)
    watcher.drain()
    t0 = time.perf_counter()
    enqueue_job(job_id, "synthetic")
    seen = watcher.wait(job_id, lambda s, p: s in ("running", "completed"))
    watcher.wait(job_id, lambda s, p: s == "completed")
    return (seen - t0) * 1000


def enqueue_trial_bare(broker: Any, client: redis.Redis) -> float:
    import dramatiq

    client.delete("bench:arrivals")
    sent = time.time()
    broker.enqueue(
        dramatiq.Message(
            queue_name="bench_bare", actor_name="bench_noop", args=(sent,), kwargs={}, options={}
        )
    )
    got: Any = client.blpop(["bench:arrivals"], timeout=30)
    if got is None:
        raise TimeoutError("bare Dramatiq worker did not answer")
    return (float(got[1]) - sent) * 1000


def bare_worker_main(redis_url: str) -> None:
    """`--bare-worker`: a Dramatiq worker with default settings and one stamping actor."""
    import threading

    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
    dramatiq.set_broker(broker)
    client = redis.Redis.from_url(redis_url)

    @dramatiq.actor(actor_name="bench_noop", queue_name="bench_bare", max_retries=0)
    def bench_noop(_sent: float) -> None:
        client.rpush("bench:arrivals", repr(time.time()))

    worker = dramatiq.Worker(broker)  # defaults: 8 threads, worker_timeout 1000 ms
    worker.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    worker.stop()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(common.percentile(values, 50), 1),
        "p90": round(common.percentile(values, 90), 1),
        "p99": round(common.percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40, help="pause/resume/cancel trials")
    parser.add_argument("--enqueue-trials", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bare-worker", metavar="REDIS_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        bare_worker_main(args.bare_worker)
        return

    from dramatiq.brokers.redis import RedisBroker

    from runtime.db import make_engine
    from tests.factories import make_domain, make_source, make_user

    info = common.machine()
    rng = random.Random(9)
    client = redis.Redis.from_url(common.ensure_redis())
    client.flushdb()
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {}
    try:
        with common.scratch_database("dashin_bench_ctl") as db_url:
            common.use_services(db_url)
            env = common.service_env(db_url)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "workers", "--queues", "synthetic", "--threads", "2"],
                    env=env,
                    cwd=common.ROOT,
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--bare-worker", common.ensure_redis()],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            engine = make_engine(db_url, pool_size=2)
            domain = make_domain(engine)
            user = make_user(engine, domain)
            world = {
                "domain": domain,
                "user": user,
                "source": make_source(engine, domain, "synthetic", {"total": 1000}),
            }
            watcher = Watcher(db_url)
            broker = RedisBroker(url=common.ensure_redis())  # type: ignore[no-untyped-call]
            # warm up both workers (imports, connections)
            enqueue_trial_dashin(engine, watcher, world)
            enqueue_trial_bare(broker, client)

            controls = []
            for n in range(args.trials):
                controls.append(control_trial(engine, watcher, world, rng))
                if not args.json and (n + 1) % 10 == 0:
                    print(f"  {n + 1} control trials, load {common.loadavg()[0]}", flush=True)
            dashin_enq: list[float] = []
            bare_enq: list[float] = []
            for n in range(args.enqueue_trials):
                for which in ("dashin", "bare") if n % 2 == 0 else ("bare", "dashin"):
                    time.sleep(rng.uniform(1.0, 2.0))  # idle: the consumers are polling
                    if which == "dashin":
                        dashin_enq.append(enqueue_trial_dashin(engine, watcher, world))
                    else:
                        bare_enq.append(enqueue_trial_bare(broker, client))
                if not args.json and (n + 1) % 10 == 0:
                    print(f"  {n + 1} enqueue trials, load {common.loadavg()[0]}", flush=True)
            watcher.close()
            engine.dispose()
            for key in ("pause_ms", "resume_first_page_ms", "cancel_ms"):
                results[key] = summary([c[key] for c in controls])
            results["enqueue_to_running_ms"] = summary(dashin_enq)
            results["bare_dramatiq_enqueue_to_start_ms"] = summary(bare_enq)
            results["samples"] = {
                "controls": [{k: round(v, 1) for k, v in c.items()} for c in controls],
                "enqueue_dashin": [round(v, 1) for v in dashin_enq],
                "enqueue_bare": [round(v, 1) for v in bare_enq],
            }
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        client.flushdb()
    info["loadavg_end"] = common.loadavg()
    results["machine"] = info
    results["targets_ms"] = TARGETS_MS
    if args.json:
        common.emit_json(results)
        return
    common.print_machine(info)
    rows = []
    for key, label in (
        ("pause_ms", "pause -> paused (20 ms pages)"),
        ("resume_first_page_ms", "resume -> first new page"),
        ("cancel_ms", "cancel -> cancelled"),
        ("enqueue_to_running_ms", "enqueue -> running, idle dashin worker"),
        ("bare_dramatiq_enqueue_to_start_ms", "enqueue -> start, bare Dramatiq (defaults)"),
    ):
        s = results[key]
        rows.append([label, s["n"], s["p50"], s["p90"], s["p99"], s["max"]])
    common.print_table("Control latency (ms)", ["measure", "n", "p50", "p90", "p99", "max"], rows)
    print(
        f"\ntargets: pause p99 <= {TARGETS_MS['pause_p99']:.0f} ms, "
        f"enqueue p50 <= {TARGETS_MS['enqueue_p50']:.0f} ms"
    )


if __name__ == "__main__":
    main()
