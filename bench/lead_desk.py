"""Benchmark: the lead desk on a domain with a million leads.

Seeds a fresh, migrated database in SQL (`generate_series`, so the score trigger, the
campaign-metrics and lead-stats triggers and every index do their real work), then times the API
end to end (in-process `TestClient`, real PostgreSQL): list, deep keyset pages, filters, search,
sort by score, export and analytics. Each query runs `--repeat` times; the table shows p50 / max.

    python bench/lead_desk.py --leads 200000
    python bench/lead_desk.py --leads 1000000 --json

Needs `--admin-url` (default $BENCH_ADMIN_URL or postgresql://postgres@127.0.0.1:5432/postgres)
and a Redis (`--redis-url`, default $BENCH_REDIS_URL or redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

SEED_LEADS = """
INSERT INTO leads (domain_id, campaign_id, first_name, last_name, email, title, company_name,
                   company_domain, phone, country, status, priority, tags, created_at)
SELECT %(domain)s,
       (%(campaigns)s::uuid[])[1 + g %% array_length(%(campaigns)s::uuid[], 1)],
       (ARRAY['Olivia','Noah','Aisha','Leo','Fatima','Rafael','Ingrid','Mei','Omar','Sofia'])
           [1 + g %% 10],
       'Surname' || (g %% 50000),
       'lead' || g || '@company' || (g %% 20000) || '.example',
       (ARRAY['CTO','VP Sales','Head of Growth','Engineer','CEO','Marketing Lead'])[1 + g %% 6],
       'Company ' || (g %% 20000),
       'company' || (g %% 20000) || '.example',
       CASE WHEN g %% 3 = 0 THEN '+1 555 ' || g END,
       (ARRAY['US','DE','NO','IN','BR'])[1 + g %% 5],
       (ARRAY['new','new','new','contacted','contacted','responded','qualified','rejected',
              'converted'])[1 + (g * 7) %% 9],
       (ARRAY['low','medium','medium','high'])[1 + (g * 3) %% 4],
       CASE WHEN g %% 10 = 0 THEN ARRAY['vip'] ELSE '{}'::text[] END,
       now() - make_interval(secs => (g::bigint * 7919) %% (400 * 86400))
FROM generate_series(%(start)s::int, %(stop)s::int) g
"""


def seed(url: str, leads: int, batch: int = 200_000) -> dict[str, Any]:
    """Domain, manager, 20 campaigns, `leads` leads, provenance for a tenth, 50k link clicks."""
    from sqlalchemy.orm import Session

    import migrations
    from models import tenancy_repo
    from runtime.db import make_engine

    migrations.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        domain = tenancy_repo.create_domain(session, "bench.example", created_by=None)
        user = tenancy_repo.create_user(
            session, email="boss@bench.example", password_hash=None, signup_domain_id=domain.id
        )
        tenancy_repo.add_membership(session, domain.id, user.id, "manager")
        ids = (domain.id, user.id)
    engine.dispose()
    domain_id, user_id = ids
    with psycopg.connect(url, autocommit=True) as conn:
        campaigns = [
            row[0]
            for row in conn.execute(
                "INSERT INTO campaigns (domain_id, name, slug, created_by) "
                "SELECT %s, 'Campaign ' || g, 'campaign-' || g, %s FROM generate_series(1, 20) g "
                "RETURNING id",
                (domain_id, user_id),
            )
        ]
        source = conn.execute(
            "INSERT INTO data_sources (domain_id, type, name) VALUES (%s, 'apollo', 'Apollo') "
            "RETURNING id",
            (domain_id,),
        ).fetchone()
        assert source is not None
        started = time.perf_counter()
        for start in range(1, leads + 1, batch):
            conn.execute(
                SEED_LEADS,
                {
                    "domain": domain_id,
                    "campaigns": campaigns,
                    "start": start,
                    "stop": min(start + batch - 1, leads),
                },
            )
        conn.execute(
            "INSERT INTO lead_sources (domain_id, lead_id, data_source_id, external_id) "
            "SELECT domain_id, id, %s, 'ap-' || id FROM leads TABLESAMPLE SYSTEM (10)",
            (source[0],),
        )
        link = conn.execute(
            "INSERT INTO links (domain_id, campaign_id, destination_url, utm_source, utm_medium, "
            "utm_campaign, full_url, short_code) VALUES (%s, %s, 'https://x.example/', 'li', "
            "'social', 'campaign-1', 'https://x.example/?utm_source=li', 'benchcode') RETURNING id",
            (domain_id, campaigns[0]),
        ).fetchone()
        assert link is not None
        conn.execute(
            "INSERT INTO link_clicks (link_id, domain_id, ts, ua_family, country) "
            "SELECT %s, %s, now() - make_interval(secs => g * 97 %% (90 * 86400)), 'Chrome', 'US' "
            "FROM generate_series(1, 50000) g",
            (link[0], domain_id),
        )
        conn.execute("VACUUM ANALYZE")
        seconds = time.perf_counter() - started
    return {
        "domain_id": domain_id,
        "user_id": user_id,
        "campaign": campaigns[0],
        "source": source[0],
        "link": link[0],
        "seed_seconds": round(seconds, 1),
    }


def timed(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


def run(url: str, redis_url: str, info: dict[str, Any], repeat: int) -> dict[str, dict[str, Any]]:
    os.environ.update(
        DATABASE_URL=url, REDIS_URL=redis_url, DASHIN_SECRET_KEY="bench-secret-key-long-enough-1234"
    )
    from fastapi.testclient import TestClient

    from api import security
    from api.app import create_app
    from runtime.settings import get_settings, reset_settings_cache

    reset_settings_cache()
    token = security.issue_access_token(get_settings(), info["user_id"], None).token
    headers = {"Authorization": f"Bearer {token}"}
    client = TestClient(create_app())

    def get(path: str, **params: Any) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get(f"/api/v1{path}", params=params, headers=headers)
            assert response.status_code == 200, response.text
            return response

        return call

    def deep_pages() -> None:
        cursor = None
        for _ in range(20):
            params = {"page_size": 100, **({"cursor": cursor} if cursor else {})}
            cursor = get("/leads", **params)().json()["next_cursor"]

    def export(**params: Any) -> Callable[[], int]:
        def call() -> int:
            with client.stream("GET", "/api/v1/leads/export", params=params, headers=headers) as r:
                return sum(len(chunk) for chunk in r.iter_bytes())

        return call

    campaign, source = str(info["campaign"]), str(info["source"])
    cases: dict[str, Callable[[], Any]] = {
        "list first page (50)": get("/leads"),
        "list 20 pages x 100 (keyset)": deep_pages,
        "sort by score": get("/leads", sort="-score"),
        "filter status+priority": get("/leads", status="qualified", priority="high"),
        "filter campaign": get("/leads", campaign_id=campaign),
        "filter tag": get("/leads", tag="vip"),
        "filter data source": get("/leads", data_source_id=source),
        "filter created range": get(
            "/leads", created_from="2020-01-01T00:00:00Z", created_to="2099-01-01T00:00:00Z"
        ),
        "search q=company 123": get("/leads", q="company 123"),
        "search q=lead4242@": get("/leads", q="lead4242@"),
        "count=true status=new": get("/leads", status="new", count="true"),
        "export campaign (csv)": export(campaign_id=campaign),
        "analytics overview 30d": get("/analytics/overview", range="30d"),
        "analytics overview 1y": get("/analytics/overview", range="1y"),
        "analytics campaign 90d/week": get(
            f"/analytics/campaigns/{campaign}", range="90d", group_by="week", tz="Europe/Oslo"
        ),
        "analytics leads 1y/month": get("/analytics/leads", range="1y", group_by="month"),
        "link analytics 90d": get(f"/links/{info['link']}/analytics", range="90d"),
    }
    results = {name: timed(fn, repeat) for name, fn in cases.items()}
    started = time.perf_counter()
    size = export()()
    seconds = time.perf_counter() - started
    ms = round(seconds * 1000, 1)
    results["export all (csv)"] = {"p50_ms": ms, "max_ms": ms, "mb": round(size / 1e6, 1)}
    return results


def _database(admin_url: str, name: str, *, create: bool) -> str:
    """Create (or drop) the scratch database `name`; answers its URL."""
    from urllib.parse import urlsplit, urlunsplit

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
        else:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    name = f"dashin_bench_{uuid.uuid4().hex[:8]}"
    url = _database(args.admin_url, name, create=True)
    try:
        info = seed(url, args.leads)
        results = run(url, args.redis_url, info, args.repeat)
    finally:
        if not args.keep:
            from runtime.db import reset_engines

            reset_engines()
            _database(args.admin_url, name, create=False)
    if args.json:
        print(
            json.dumps(
                {"leads": args.leads, "seed_seconds": info["seed_seconds"], "results": results},
                indent=2,
            )
        )
        return
    print(
        f"{args.leads:,} leads, seeded in {info['seed_seconds']} s (triggers and indexes included)"
    )
    print(f"{'case':<32} {'p50 ms':>9} {'max ms':>9}")
    for case, r in results.items():
        extra = f"  ({r['mb']} MB)" if "mb" in r else ""
        print(f"{case:<32} {r['p50_ms']:>9} {r['max_ms']:>9}{extra}")


if __name__ == "__main__":
    main()
