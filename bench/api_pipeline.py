"""Benchmark: the API connector pipeline (Apollo emulator → HTTP layer → runner → sink).

An Apollo emulator in this process (no rate limit that binds, 100 people per page) serves real
worker processes (`python -m workers --queues apollo --processes N --threads 1`), each running
one Apollo job into its own domain (the sink serialises writers per domain). For N = 1, 2, 4
processes: leads committed per second over `--seconds` (after the first committed page and a
warm-up of 3 s), in total and per process; the target is >= 10,000 leads/s per process.

Then with 50 ms of added latency per request and one process: pages committed per second
against the ideal of one page per 50 ms (the runner prefetches one page, so fetching the next
page overlaps committing this one; the ideal assumes the commit is the shorter of the two).

    python bench/api_pipeline.py                        # 20 s per configuration
    python bench/api_pipeline.py --seconds 60 --processes 1,2,4 --json
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import apollo_world
import common

WARMUP_S = 3.0


def measure(
    db_url: str,
    engine: Any,
    emulator: apollo_world.TimedApollo,
    processes: int,
    seconds: float,
    per_page: int,
) -> dict[str, Any]:
    from tests.factories import make_domain, make_user

    common.flush_redis()
    workers = common.start_workers(db_url, "apollo", processes, 1, **apollo_world.WORKER_ENV)
    jobs: list[uuid.UUID] = []
    try:
        for _ in range(processes):
            domain = make_domain(engine)
            user = make_user(engine, domain)
            source = apollo_world.apollo_source(engine, domain, emulator)
            jobs.append(apollo_world.queue_job(engine, domain, source, user, per_page=per_page))

        def all_committing() -> bool:
            return all(p >= 1 for _, p, _ in apollo_world.counters(engine, jobs).values())

        if not common.wait_until(all_committing, 90, 0.05):
            raise RuntimeError(f"jobs did not start: {apollo_world.counters(engine, jobs)}")
        time.sleep(WARMUP_S)
        before = apollo_world.counters(engine, jobs)
        cpu_before = _cpu_seconds(workers.pid)
        started = time.monotonic()
        time.sleep(seconds)
        after = apollo_world.counters(engine, jobs)
        elapsed = time.monotonic() - started
        cpu = _cpu_seconds(workers.pid) - cpu_before
    finally:
        apollo_world.cancel_all(engine, jobs)
        common.stop_process(workers)
    leads = sum(after[j][2] - before[j][2] for j in jobs)
    pages = sum(after[j][1] - before[j][1] for j in jobs)
    finished = [j for j in jobs if after[j][0] not in ("running", "pausing", "cancelling")]
    return {
        "processes": processes,
        "latency_ms": emulator.faults.latency_ms,
        "leads_per_s": round(leads / elapsed),
        "leads_per_s_per_process": round(leads / elapsed / processes),
        "pages_per_s": round(pages / elapsed, 2),
        "worker_cpu_s_per_s": round(cpu / elapsed, 2),
        "jobs_finished_early": len(finished),
    }


def _cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and its children (the worker pool)."""
    import psutil

    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per config")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from runtime.db import make_engine

    info = common.machine()
    runs: list[dict[str, Any]] = []
    with (
        common.scratch_database("dashin_bench_api") as db_url,
        apollo_world.TimedApollo(people=2_000_000) as emulator,
    ):
        common.use_services(db_url, **apollo_world.WORKER_ENV)
        engine = make_engine(db_url, pool_size=2)
        for n in (int(x) for x in args.processes.split(",")):
            emulator.faults.latency_ms = 0.0
            runs.append(measure(db_url, engine, emulator, n, args.seconds, args.per_page))
            if not args.json:
                print(f"  {runs[-1]}  load {common.loadavg()[0]}", flush=True)
        emulator.faults.latency_ms = args.latency_ms
        runs.append(measure(db_url, engine, emulator, 1, args.seconds, args.per_page))
        engine.dispose()
    ideal = 1000.0 / args.latency_ms
    latency_run = runs[-1]
    latency_run["ideal_pages_per_s"] = round(ideal, 2)
    latency_run["fraction_of_ideal"] = round(latency_run["pages_per_s"] / ideal, 3)
    info["loadavg_end"] = common.loadavg()
    result = {"runs": runs, "per_page": args.per_page, "seconds": args.seconds, "machine": info}
    if args.json:
        common.emit_json(result)
        return
    common.print_machine(info)
    common.print_table(
        f"API pipeline (Apollo emulator, {args.per_page}/page, {args.seconds:.0f} s each)",
        ["latency ms", "processes", "leads/s", "per process", "pages/s", "worker CPU/s"],
        [
            [
                r["latency_ms"],
                r["processes"],
                r["leads_per_s"],
                r["leads_per_s_per_process"],
                r["pages_per_s"],
                r["worker_cpu_s_per_s"],
            ]
            for r in runs
        ],
    )
    print(
        f"\n{args.latency_ms:.0f} ms latency: {latency_run['pages_per_s']} pages/s against an "
        f"ideal {ideal:.0f} ({latency_run['fraction_of_ideal']:.0%}); "
        "target >= 10,000 leads/s per process without latency"
    )


if __name__ == "__main__":
    main()
