"""CPU per `GET /api/v1/leads?page_size=50` in the API process, reference vs this tree.

Scratch DB, LEADS leads (+1 provenance row each), `dashin api --workers 1` from each tree in
turn; one keep-alive client sends N sequential requests; psutil CPU time (user+sys, the API
process and its children) / N. Rounds alternate the trees; medians reported.

    python bench/leads_cpu.py --reference /tmp/leads_ref --rounds 3 --requests 2000
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import common
import httpx
import psutil
from api_load import prepare_domain, start_api

SEED_SOURCES = """
INSERT INTO lead_sources (domain_id, lead_id, data_source_id, job_id, external_id)
SELECT domain_id, id, %(source)s, %(job)s, 'ext-' || id FROM leads WHERE domain_id = %(domain)s
"""


def cpu(pid: int) -> float:
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        t = p.cpu_times()
        total += t.user + t.system
    return total


def run(root: Path, db_url: str, token: str, n: int, path: str) -> float:
    api, base = start_api(root, db_url, 1)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers, timeout=30) as client:
            for _ in range(200):
                assert client.get(base + path).status_code == 200
            before = cpu(api.pid)
            for _ in range(n):
                client.get(base + path)
            after = cpu(api.pid)
        return (after - before) / n * 1000
    finally:
        common.stop_process(api)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--path", default="/api/v1/leads?page_size=50")
    args = parser.parse_args()
    import psycopg
    from api_load import seed

    trees = {"this": common.ROOT}
    if args.reference:
        trees = {"reference": args.reference, **trees}
    results: dict[str, list[float]] = {t: [] for t in trees}
    print("load before", common.loadavg(), flush=True)
    with common.scratch_database("dashin_bench_leadcpu") as db_url:
        common.use_services(db_url)
        token, domain, _user, source, job_id = prepare_domain(db_url)
        seed(db_url, domain, args.leads)
        with psycopg.connect(db_url) as conn:
            conn.execute(SEED_SOURCES, {"source": source, "job": job_id, "domain": domain})
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE lead_sources")
        for r in range(args.rounds):
            for tree, root in trees.items():
                ms = run(root, db_url, token, args.requests, args.path)
                results[tree].append(ms)
                print(f"round {r + 1} {tree}: {ms:.2f} ms CPU/request", flush=True)
    for tree, values in results.items():
        each = ", ".join(f"{v:.2f}" for v in values)
        print(f"{tree}: median {statistics.median(values):.2f} ms  ({each})")
    print("load after", common.loadavg())


if __name__ == "__main__":
    main()
