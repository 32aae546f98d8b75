"""Benchmark: rate-limit fidelity of four workers sharing one provider limit.

An Apollo emulator in this process enforces a sliding window of R requests per second (a request
arriving when R were accepted in the second before it is answered 429 and counted as a
violation) and timestamps every request. Four worker processes (`python -m workers --queues
apollo --processes 4 --threads 1`) run four Apollo jobs on one data source whose `search_limit`
is R per `limit_window_s = 1`: the shared Redis limiter (`connectors.kit.ratelimit`) is all
that keeps them under the limit. After `--seconds`, the jobs are cancelled.

Reported: the achieved rate of accepted requests (over whole windows, after the first one or
2 s of start-up) against R (target
>= 95%), the most requests accepted in any 1 s window (sliding, over every arrival), 429s, and
the requests each job made. Pages are small (`per_page`, default 10) so that the database is not
what limits the rate.

    python bench/rate_limit.py                          # R = 10/s, 60 s
    python bench/rate_limit.py --rate 20 --window 10    # 200 per 10 s
    python bench/rate_limit.py --rate 1000 --seconds 30  # no real limit: the jobs' own capacity
    python bench/rate_limit.py --rate 100 --seconds 30 --json
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import apollo_world
import common


def max_in_window(times: list[float], window: float) -> int:
    """Most events in any half-open window of `window` seconds (two pointers on sorted times)."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10, help="R: emulator limit, requests/s")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--window", type=float, default=1.0, help="limit window in s (R x window per window)"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes (one job each)")
    parser.add_argument("--per-page", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from runtime.db import make_engine
    from tests.factories import make_domain, make_user

    info = common.machine()
    common.flush_redis()
    result: dict[str, Any] = {
        "rate": args.rate,
        "window_s": args.window,
        "seconds": args.seconds,
        "workers": args.workers,
    }
    with (
        common.scratch_database("dashin_bench_rl") as db_url,
        apollo_world.TimedApollo(
            rate_limit=(round(args.rate * args.window), args.window)
        ) as emulator,
    ):
        common.use_services(db_url, **apollo_world.WORKER_ENV)
        engine = make_engine(db_url, pool_size=2)
        domain = make_domain(engine)
        user = make_user(engine, domain)
        source = apollo_world.apollo_source(
            engine,
            domain,
            emulator,
            search_limit=round(args.rate * args.window),
            limit_window_s=args.window,
        )
        workers = common.start_workers(db_url, "apollo", args.workers, 1, **apollo_world.WORKER_ENV)
        jobs = []
        try:
            jobs = [
                apollo_world.queue_job(engine, domain, source, user, per_page=args.per_page)
                for _ in range(args.workers)
            ]
            if not common.wait_until(lambda: emulator.arrivals, 60):
                raise RuntimeError("no request reached the emulator within 60 s")
            first = emulator.arrivals[0][0]
            deadline = first + args.seconds
            while time.monotonic() < deadline:
                time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
                if not args.json:
                    n = len(emulator.arrivals)
                    print(
                        f"  {n} requests, {emulator.violations} over the limit, "
                        f"load {common.loadavg()[0]}",
                        flush=True,
                    )
            end = time.monotonic()
            per_job = apollo_world.counters(engine, jobs)
        finally:
            apollo_world.cancel_all(engine, jobs)
            common.stop_process(workers)
            engine.dispose()
            common.flush_redis()
        arrivals = [(t, s) for t, s in emulator.arrivals if t <= end]
        accepted = [t for t, s in arrivals if s != 429]
        # whole windows after the first one (start-up): a windowed limit is met per window
        warm = first + max(args.window, 2.0)
        windows = max(1, int((end - warm) // args.window))
        steady = [t for t in accepted if warm <= t < warm + windows * args.window]
        achieved = len(steady) / (windows * args.window)
        # How late each slot is reused: arrival i against arrival i - L (L = limit per window)
        per_window = round(args.rate * args.window)
        ordered = sorted(steady)
        excess = [
            (ordered[i] - ordered[i - per_window] - args.window) * 1000
            for i in range(per_window, len(ordered))
        ]
        result.update(
            {
                # min < 0 would be a request over the limit; its size is the margin left
                "slot_reuse_excess_ms": {
                    "min": round(min(excess), 1),
                    "p1": round(common.percentile(excess, 1), 1),
                    "p10": round(common.percentile(excess, 10), 1),
                    "p50": round(common.percentile(excess, 50), 1),
                    "p90": round(common.percentile(excess, 90), 1),
                }
                if excess
                else None,
                "requests": len(arrivals),
                "accepted": len(accepted),
                "rejected_429": sum(1 for _, s in arrivals if s == 429),
                "violations": emulator.violations,
                "achieved_per_s": round(achieved, 2),
                "achieved_fraction": round(achieved / args.rate, 4),
                "max_in_any_1s_window": max_in_window([t for t, _ in arrivals], 1.0),
                "max_in_any_window": max_in_window([t for t, _ in arrivals], args.window),
                "pages_per_job": sorted(p for _, p, _ in per_job.values()),
                "jobs_active": sum(1 for _, p, _ in per_job.values() if p > 0),
            }
        )
    info["loadavg_end"] = common.loadavg()
    result["machine"] = info
    result["target_met"] = (
        result["achieved_fraction"] >= 0.95
        and result["violations"] == 0
        and result["max_in_any_window"] <= round(args.rate * args.window)
    )
    if args.json:
        common.emit_json(result)
        return
    common.print_machine(info)
    common.print_table(
        f"Rate-limit fidelity: {args.workers} worker processes, limit {args.rate}/s, "
        f"{args.seconds:.0f} s",
        ["measure", "value"],
        [
            ["requests (all arrivals)", result["requests"]],
            ["achieved accepted/s (whole windows)", result["achieved_per_s"]],
            ["achieved / R (target >= 0.95)", result["achieved_fraction"]],
            ["most requests in any 1 s window", result["max_in_any_1s_window"]],
            [f"most in any {args.window:g} s window", result["max_in_any_window"]],
            ["over the limit (429)", result["violations"]],
            [
                "slot reused after window + (min / p50 ms)",
                "{min} / {p50}".format(
                    **(result["slot_reuse_excess_ms"] or {"min": "-", "p50": "-"})
                ),
            ],
            ["jobs that made requests", result["jobs_active"]],
            ["pages per job", str(result["pages_per_job"])],
            ["target met", result["target_met"]],
        ],
    )


if __name__ == "__main__":
    main()
