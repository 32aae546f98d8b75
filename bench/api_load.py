"""Benchmark: the control API under load, `GET /jobs/{id}` and `GET /leads?page_size=50`.

The API runs as `dashin api --workers N` on a loopback port. One domain gets `--leads` leads
(default 1,000,000) written with one `INSERT ... SELECT generate_series` (indexes and triggers
on, so the table looks like a real one; not timed), and one job. A second process then drives
each endpoint:

* **open loop at `--rate` requests/s** (default 200) for `--seconds`: requests are scheduled at
  fixed times and spread over 16 threads (one keep-alive connection each); latency is measured
  from each request's *scheduled* time, so a stalled server is not hidden by a stalled client
  (no coordinated omission). Target: p99 <= 50 ms at 200 rps.
* **closed loop** with 8 threads as fast as they go for 10 s: the highest rate the API serves.
* with `--ramp`, **the maximum sustainable rate**: open loop from `--ramp-from` up in steps of
  `--ramp-step` (`--ramp-seconds` each) while p99 <= 50 ms and 95% of the rate is achieved.

`--workers 1,2` measures each process count; `--reference DIR` serves the API from another
checkout too (same migrations; e.g. `git worktree add /tmp/ref <commit>`), back to back with
this tree on the same seeded database, so before/after figures share one noisy machine state;
`--rounds` repeats everything and the table shows medians.

    python bench/api_load.py                       # 1M leads, 15 s per endpoint, 1 process
    python bench/api_load.py --workers 1,2 --rounds 3 --ramp --reference /tmp/ref
    python bench/api_load.py --leads 200000 --rate 400 --json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
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


def start_api(root: Path, db_url: str, workers: int) -> tuple[Any, str]:
    """`dashin api --workers N` served from the checkout at `root`; waits for /healthz."""
    import httpx

    port = common.free_port()
    env = common.service_env(db_url, DASHIN_ALLOW_ANY_DOMAIN_NAME="true", PYTHONPATH=str(root))
    argv = ["-m", "cli.main", "api", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, *argv, "--workers", str(workers)],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the API from {root} exited")
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if not common.wait_until(up, 60, 0.2):
        common.stop_process(proc)
        raise RuntimeError("the API did not come up in 60 s")
    return proc, base


def ramp(url: str, token: str, start: float, step: float, seconds: float) -> dict[str, Any]:
    """The highest open-loop rate (from `start`, in `step`s) with p99 <= target, achieved."""
    best: dict[str, Any] = {"rate": 0.0}
    rate = start
    for _ in range(40):
        result = drive(url, token, rate, seconds)
        ok = result["p99_ms"] <= TARGET_P99_MS and result["achieved_rps"] >= 0.95 * rate
        if not ok:
            break
        best = {"rate": rate, **result}
        rate += step
    return best


def seed(db_url: str, domain: Any, leads: int) -> None:
    import psycopg

    with psycopg.connect(db_url) as conn:
        for lo in range(1, leads + 1, 100_000):
            hi = min(leads, lo + 99_999)
            conn.execute(_SEED, {"domain": domain, "lo": lo, "hi": hi})
            conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE leads")


def measure(
    args: argparse.Namespace, root: Path, db_url: str, token: str, job_id: Any, workers: int
) -> dict[str, Any]:
    """Every endpoint against one start of the API (the token outlives restarts: one key)."""
    api, base = start_api(root, db_url, workers)
    out: dict[str, Any] = {}
    try:
        endpoints = {
            "GET /jobs/{id}": f"{base}/api/v1/jobs/{job_id}",
            "GET /leads?page_size=50": f"{base}/api/v1/leads?page_size=50",
        }
        for name, url in endpoints.items():
            result: dict[str, Any] = {
                "open_loop": drive(url, token, args.rate, args.seconds),
                "max": drive(url, token, 0, 10.0),
            }
            if args.ramp:
                result["sustainable"] = ramp(
                    url, token, args.ramp_from, args.ramp_step, args.ramp_seconds
                )
            out[name] = result
    finally:
        common.stop_process(api)
    return out


def prepare_domain(db_url: str) -> tuple[str, Any, Any, Any, Any]:
    """Sign a user up through a short-lived API: (token, domain, user, source, job) with one
    synthetic data source and one job in the new domain."""
    from runtime.db import make_engine
    from tests.factories import make_job, make_source

    api, base = start_api(common.ROOT, db_url, 1)
    try:
        engine = make_engine(db_url, pool_size=1)
        token, domain, user = common.signup(base)
        source = make_source(engine, domain, "synthetic", {"total": 10})
        job_id = make_job(engine, domain, source, {}, user)
        engine.dispose()
    finally:
        common.stop_process(api)
    return token, domain, user, source, job_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", default="1", help="API processes, a comma list: 1,2")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--reference", type=Path, help="also serve the API from this checkout")
    parser.add_argument("--ramp", action="store_true", help="find the max sustainable rate")
    parser.add_argument("--ramp-from", type=float, default=100.0)
    parser.add_argument("--ramp-step", type=float, default=50.0)
    parser.add_argument("--ramp-seconds", type=float, default=8.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(json.loads(args.load))
        return

    trees = {"this": common.ROOT}
    if args.reference:
        trees = {"reference": args.reference.resolve(), **trees}
    worker_counts = [int(n) for n in args.workers.split(",")]
    info = common.machine()
    if args.reference:
        info["reference"] = _describe(args.reference)
    common.flush_redis()
    results: dict[str, Any] = {"leads": args.leads, "rate": args.rate, "runs": []}
    with common.scratch_database("dashin_bench_load") as db_url:
        common.use_services(db_url)
        token, domain, _user, _source, job_id = prepare_domain(db_url)
        started = time.perf_counter()
        seed(db_url, domain, args.leads)
        results["seed_s"] = round(time.perf_counter() - started, 1)
        if not args.json:
            print(f"seeded {args.leads:,} leads in {results['seed_s']} s", flush=True)
        for round_no in range(1, args.rounds + 1):
            for workers in worker_counts:
                for tree, root in trees.items():
                    run = measure(args, root, db_url, token, job_id, workers)
                    results["runs"].append(
                        {"tree": tree, "workers": workers, "round": round_no, **run}
                    )
                    if not args.json:
                        print(f"round {round_no}, {tree}, {workers} process(es):", flush=True)
                        for name, r in run.items():
                            print(f"  {name}: {r}", flush=True)
    common.flush_redis()
    info["loadavg_end"] = common.loadavg()
    results["machine"] = info
    results["summary"] = summarize(results["runs"])
    if args.json:
        common.emit_json(results)
        return
    common.print_machine(info)
    common.print_table(
        f"API under load ({args.leads:,} leads in the domain; open loop at {args.rate:.0f} rps, "
        f"latency from the scheduled time; medians of {args.rounds} round(s))",
        [
            "tree",
            "procs",
            "endpoint",
            "rps",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99 <= 50",
            "max rps",
            "p50/p99 at max",
            "sustainable rps",
        ],
        [
            [
                row["tree"],
                row["workers"],
                row["endpoint"],
                row["achieved_rps"],
                row["p50_ms"],
                row["p90_ms"],
                row["p99_ms"],
                row["p99_ms"] <= TARGET_P99_MS,
                row["max_rps"],
                f"{row['max_p50_ms']} / {row['max_p99_ms']}",
                row.get("sustainable_rps", "-"),
            ]
            for row in results["summary"]
        ],
    )


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over rounds, per (tree, process count, endpoint)."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for run in runs:
        for endpoint, result in run.items():
            if isinstance(result, dict):
                groups.setdefault((run["tree"], run["workers"], endpoint), []).append(result)
    rows = []
    for (tree, workers, endpoint), results in groups.items():

        def med(part: str, key: str, results: list[dict[str, Any]] = results) -> float:
            return round(common.median([r[part][key] for r in results]), 1)

        row: dict[str, Any] = {
            "tree": tree,
            "workers": workers,
            "endpoint": endpoint,
            "achieved_rps": med("open_loop", "achieved_rps"),
            "p50_ms": med("open_loop", "p50_ms"),
            "p90_ms": med("open_loop", "p90_ms"),
            "p99_ms": med("open_loop", "p99_ms"),
            "max_rps": med("max", "achieved_rps"),
            "max_p50_ms": med("max", "p50_ms"),
            "max_p99_ms": med("max", "p99_ms"),
        }
        if all("sustainable" in r for r in results):
            row["sustainable_rps"] = med("sustainable", "rate")
        rows.append(row)
    return rows


def _describe(root: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or str(root)


if __name__ == "__main__":
    main()
