"""Benchmark: `GET /leads/export` of a big domain — rows per second and the API's peak RSS.

One domain gets `--leads` leads (default 1,000,000) by one `INSERT … SELECT generate_series`
(indexes and triggers on; not timed). `dashin api`'s app then runs under uvicorn, one process,
and a client streams the whole export (CSV, then JSON lines) and counts its lines. The API
process's RSS is sampled every 50 ms while it streams; `VmHWM` is its peak. With `--reference
DIR` the same export is also served from another checkout (e.g. `git archive <commit> | tar -x
-C DIR`) on the same database, back to back, for a before/after in one run.

    python bench/export_speed.py                         # 1M leads
    python bench/export_speed.py --leads 200000 --reference /tmp/export_ref
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import common

_SEED = """
INSERT INTO leads (domain_id, first_name, last_name, email, title, company_name,
                   company_domain, country, linkedin_url, tags, created_at)
SELECT %(domain)s,
       'First' || g, 'Last' || (g %% 50000),
       'lead' || g || '@company' || (g %% 20000) || '.example',
       (ARRAY['Founder','=CTO','Head of Sales','VP Sales'])[1 + g %% 4],
       'Company ' || (g %% 20000), 'company' || (g %% 20000) || '.example',
       (ARRAY['US','DE','NO','IN','BR'])[1 + g %% 5],
       CASE WHEN g %% 2 = 0 THEN 'https://www.linkedin.com/in/lead-' || g END,
       CASE WHEN g %% 10 = 0 THEN ARRAY['vip'] ELSE '{}'::text[] END,
       now() - make_interval(secs => g)
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
"""


def serve(db_url: str, root: Path) -> tuple[Any, str]:
    import httpx

    port = common.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=common.service_env(db_url, DASHIN_ALLOW_ANY_DOMAIN_NAME="true"),
        cwd=root,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if not common.wait_until(up, 60, 0.2):
        common.stop_process(proc)
        raise RuntimeError("the API did not come up")
    return proc, base


def export_once(base: str, token: str, fmt: str, pid: int) -> dict[str, Any]:
    import httpx

    peak = [common.vm_rss_mb(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak.append(common.vm_rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    rss_before = peak[0]
    sampler.start()
    lines = size = 0
    started = time.perf_counter()
    try:
        with httpx.stream(
            "GET",
            base + "/api/v1/leads/export",
            params={"format": fmt},
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                lines += chunk.count(b"\n")
                size += len(chunk)
        seconds = time.perf_counter() - started
    finally:
        done.set()
        sampler.join()
    rows = lines - 1 if fmt == "csv" else lines
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "mb": round(size / 1e6, 1),
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_mb": round(max(peak), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--reference", type=Path, help="also serve the export from this tree")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import psycopg

    info = common.machine()
    trees = {"this": common.ROOT}
    if args.reference:
        trees = {"reference": args.reference.resolve(), **trees}
    runs: list[dict[str, Any]] = []
    with common.scratch_database("dashin_bench_export") as db_url:
        common.use_services(db_url)
        proc, base = serve(db_url, common.ROOT)
        try:
            token, domain, _user = common.signup(base)
        finally:
            common.stop_process(proc)
        started = time.perf_counter()
        with psycopg.connect(db_url) as conn:
            for lo in range(1, args.leads + 1, 100_000):
                hi = min(args.leads, lo + 99_999)
                conn.execute(_SEED, {"domain": domain, "lo": lo, "hi": hi})
                conn.commit()
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE leads")
        if not args.json:
            print(f"seeded {args.leads:,} in {time.perf_counter() - started:.0f}s", flush=True)
        for tree, root in trees.items():
            proc, base = serve(db_url, root)
            try:
                for fmt in ("csv", "jsonl"):
                    try:
                        run = export_once(base, token, fmt, proc.pid)
                    except Exception as exc:  # the reference may not know jsonl
                        run = {"error": str(exc)[:200]}
                    runs.append({"tree": tree, "format": fmt, **run})
                    if not args.json:
                        print(f"  {tree} {fmt}: {run}  load {common.loadavg()[0]}", flush=True)
            finally:
                common.stop_process(proc)
    info["loadavg_end"] = common.loadavg()
    if args.json:
        common.emit_json({"leads": args.leads, "runs": runs, "machine": info})
        return
    common.print_machine(info)
    columns = ["tree", "format", "rows", "seconds", "rows_per_s", "mb", "rss_before_mb"]
    common.print_table(
        f"GET /leads/export of {args.leads:,} leads (one API process)",
        [*columns, "rss_peak_mb"],
        [[r.get(c, r.get("error", "")) for c in [*columns, "rss_peak_mb"]] for r in runs],
    )


if __name__ == "__main__":
    main()
