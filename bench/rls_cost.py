"""What row-level security costs the lead desk: `GET /leads` lists, searches and tag filters
with `DASHIN_RLS=on` against `off`, served side by side from the same database.

Scratch DB; two domains of LEADS leads each (SQL seed: 1% tagged `vip`, emails
`u<i>@x<i % 1000>.example`, companies `co<i % 5000>`); one `dashin api --workers 1` per setting.
One keep-alive client sends the same request to each API in turn, in blocks of BLOCK requests,
ROUNDS times, so both see the same minute of the machine; p50 / p99 per (request, setting).

    python bench/rls_cost.py --leads 200000 --requests 400
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import common
import httpx
import psycopg
from api_load import prepare_domain, start_api

#: name → path: the list, a search for one person, a search for a company (a few hundred
#: matches), a broad search (past the id cap: the plain condition) and a tag (1%)
REQUESTS = {
    "list": "/api/v1/leads?page_size=50",
    "q one person": "/api/v1/leads?page_size=50&q=u12345%40",
    "q company": "/api/v1/leads?page_size=50&q=co123",
    "q broad": "/api/v1/leads?page_size=50&q=u1",
    "tag 1%": "/api/v1/leads?page_size=50&tag=vip",
}

SEED = """
INSERT INTO leads (id, domain_id, first_name, last_name, email, company_name, title, score, tags)
SELECT gen_random_uuid(), %(domain)s, 'first' || i, 'last' || i,
    'u' || i || '@x' || (i %% 1000) || '.example', 'co' || (i %% 5000), 'title', 10,
    CASE WHEN i %% 100 = 0 THEN ARRAY['vip'] ELSE '{}'::text[] END
FROM generate_series(1, %(n)s) AS i
"""


def seed(db_url: str, domains: list[Any], leads: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(db_url, autocommit=True) as conn:
        for domain in domains:
            conn.execute(SEED, {"domain": domain, "n": leads})
        conn.execute("VACUUM ANALYZE leads")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000, help="leads per domain")
    parser.add_argument("--requests", type=int, default=400, help="per request and setting")
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = common.loadavg()
    samples: dict[tuple[str, str], list[float]] = {}
    with common.scratch_database("dashin_rls") as db_url:
        token, domain, *_ = prepare_domain(db_url)
        _, other, *_ = prepare_domain(db_url)
        seeded_s = seed(db_url, [domain, other], args.leads)
        apis: dict[str, tuple[Any, str]] = {}
        try:
            for setting in ("off", "on"):
                os.environ["DASHIN_RLS"] = setting  # the API process inherits it
                apis[setting] = start_api(common.ROOT, db_url, 1)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(headers=headers, timeout=60) as client:
                for name, path in REQUESTS.items():
                    for _, base in apis.values():  # warm up, and check the answers
                        got = client.get(base + path)
                        got.raise_for_status()
                    for _ in range(max(1, args.requests // args.block)):
                        for setting, (_, base) in apis.items():
                            times = samples.setdefault((name, setting), [])
                            for _ in range(args.block):
                                started = time.perf_counter()
                                client.get(base + path).raise_for_status()
                                times.append((time.perf_counter() - started) * 1000)
        finally:
            for proc, _ in apis.values():
                common.stop_process(proc)
    rows = []
    for name in REQUESTS:
        off, on = samples[(name, "off")], samples[(name, "on")]
        p50 = (common.percentile(off, 50), common.percentile(on, 50))
        p99 = (common.percentile(off, 99), common.percentile(on, 99))
        rows.append([name, *p50, *p99, p99[1] - p99[0]])
    info = common.machine()
    load_after = common.loadavg()
    if args.json:
        common.emit_json(
            {
                "leads_per_domain": args.leads,
                "seed_s": seeded_s,
                "samples_ms": {f"{n} {s}": v for (n, s), v in samples.items()},
                "rows": rows,
                "machine": info,
                "load": [load_before, load_after],
            }
        )
        return
    common.print_machine(info)
    print(f"load {load_before} -> {load_after}; {args.leads} leads per domain")
    print(f"seeded in {seeded_s:.0f} s")
    common.print_table(
        "GET /leads, DASHIN_RLS off vs on (ms)",
        ["request", "off p50", "on p50", "off p99", "on p99", "p99 on - off"],
        rows,
    )


if __name__ == "__main__":
    main()
