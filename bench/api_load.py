"""Benchmark: the control API under load, `GET /jobs/{id}` and `GET /leads?page_size=50`.

The API runs under uvicorn (one process, as `dashin api` starts it) on a loopback port. One
domain gets `--leads` leads (default 1,000,000) written with one `INSERT ... SELECT
generate_series` (indexes and triggers on, so the table looks like a real one; not timed), and
one job. A second process then drives each endpoint:

* **open loop at `--rate` requests/s** (default 200) for `--seconds`: requests are scheduled at
  fixed times and spread over 16 threads (one keep-alive connection each); latency is measured
  from each request's *scheduled* time, so a stalled server is not hidden by a stalled client
  (no coordinated omission). Target: p99 <= 50 ms at 200 rps.
* **closed loop** with 8 threads as fast as they go for 10 s: the highest rate the API serves.

    python bench/api_load.py                       # 1M leads, 15 s per endpoint
    python bench/api_load.py --leads 200000 --rate 400 --json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from typing import Any

import common

TARGET_P99_MS = 50.0
THREADS_OPEN = 16
THREADS_CLOSED = 8

_SEED = """
INSERT INTO leads (domain_id, first_name, last_name, email, title, company_name,
                   company_domain, country, linkedin_url, created_at)
SELECT %(domain)s,
       'First' || g, 'Last' || (g %% 50000),
       'lead' || g || '@company' || (g %% 20000) || '.example',
       (ARRAY['Founder','CTO','Head of Sales','VP Sales'])[1 + g %% 4],
       'Company ' || (g %% 20000), 'company' || (g %% 20000) || '.example',
       (ARRAY['US','DE','NO','IN','BR'])[1 + g %% 5],
       CASE WHEN g %% 2 = 0 THEN 'https://www.linkedin.com/in/lead-' || g END,
       now() - make_interval(secs => g)
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
"""


# ---- the load process -----------------------------------------------------------------------


def load_main(spec: dict[str, Any]) -> None:
    """`--load`: drive one URL open-loop (rate > 0) or closed-loop (rate == 0); print JSON."""
    import httpx

    url, headers = spec["url"], {"Authorization": f"Bearer {spec['token']}"}
    seconds, rate = float(spec["seconds"]), float(spec["rate"])
    threads = THREADS_OPEN if rate > 0 else THREADS_CLOSED
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = time.perf_counter() + 0.5
    total = int(seconds * rate) if rate > 0 else 0

    def worker(index: int) -> None:
        mine: list[float] = []
        codes: dict[int, int] = {}
        with httpx.Client(headers=headers, timeout=30) as client:
            client.get(url)  # connect and warm up
            if rate > 0:
                for k in range(index, total, threads):
                    scheduled = start + k / rate
                    delay = scheduled - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    status = client.get(url).status_code
                    mine.append((time.perf_counter() - scheduled) * 1000)
                    codes[status] = codes.get(status, 0) + 1
            else:
                while time.perf_counter() < start:
                    time.sleep(0.001)
                while time.perf_counter() < start + seconds:
                    sent = time.perf_counter()
                    status = client.get(url).status_code
                    mine.append((time.perf_counter() - sent) * 1000)
                    codes[status] = codes.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "achieved_rps": round(len(latencies) / elapsed, 1),
                "statuses": {str(k): v for k, v in statuses.items()},
                "p50_ms": round(common.percentile(latencies, 50), 1),
                "p90_ms": round(common.percentile(latencies, 90), 1),
                "p99_ms": round(common.percentile(latencies, 99), 1),
                "max_ms": round(max(latencies), 1) if latencies else None,
            }
        )
    )


def drive(url: str, token: str, rate: float, seconds: float) -> dict[str, Any]:
    spec = {"url": url, "token": token, "rate": rate, "seconds": seconds}
    out = subprocess.run(
        [sys.executable, __file__, "--load", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load process failed: {out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ---- orchestration --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(json.loads(args.load))
        return

    import psycopg

    from tests.factories import make_job, make_source

    info = common.machine()
    common.flush_redis()
    results: dict[str, Any] = {"leads": args.leads, "rate": args.rate}
    with common.scratch_database("dashin_bench_load") as db_url:
        common.use_services(db_url)
        api, base = common.start_api(db_url)
        try:
            from runtime.db import make_engine

            engine = make_engine(db_url, pool_size=1)
            token, domain, user = common.signup(base)
            source = make_source(engine, domain, "synthetic", {"total": 10})
            job_id = make_job(engine, domain, source, {}, user)
            engine.dispose()
            started = time.perf_counter()
            with psycopg.connect(db_url) as conn:
                for lo in range(1, args.leads + 1, 100_000):
                    hi = min(args.leads, lo + 99_999)
                    conn.execute(_SEED, {"domain": domain, "lo": lo, "hi": hi})
                    conn.commit()
                conn.autocommit = True
                conn.execute("VACUUM ANALYZE leads")
            results["seed_s"] = round(time.perf_counter() - started, 1)
            if not args.json:
                print(f"seeded {args.leads:,} leads in {results['seed_s']} s", flush=True)
            endpoints = {
                "GET /jobs/{id}": f"{base}/api/v1/jobs/{job_id}",
                "GET /leads?page_size=50": f"{base}/api/v1/leads?page_size=50",
            }
            for name, url in endpoints.items():
                open_loop = drive(url, token, args.rate, args.seconds)
                closed = drive(url, token, 0, 10.0)
                results[name] = {"open_loop": open_loop, "max": closed}
                if not args.json:
                    print(f"  {name}: {open_loop}\n    max: {closed}", flush=True)
        finally:
            common.stop_process(api)
            common.flush_redis()
    info["loadavg_end"] = common.loadavg()
    results["machine"] = info
    if args.json:
        common.emit_json(results)
        return
    common.print_machine(info)
    rows = []
    for name in ("GET /jobs/{id}", "GET /leads?page_size=50"):
        o, m = results[name]["open_loop"], results[name]["max"]
        rows.append(
            [
                name,
                o["achieved_rps"],
                o["p50_ms"],
                o["p99_ms"],
                o["p99_ms"] <= TARGET_P99_MS,
                m["achieved_rps"],
                m["p50_ms"],
                ",".join(f"{k}:{v}" for k, v in o["statuses"].items()),
            ]
        )
    common.print_table(
        f"API under load ({args.leads:,} leads in the domain; open loop at {args.rate:.0f} rps, "
        "latency from the scheduled time)",
        ["endpoint", "rps", "p50 ms", "p99 ms", "p99 <= 50", "max rps", "p50 at max", "status"],
        rows,
    )


if __name__ == "__main__":
    main()
