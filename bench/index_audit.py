"""Index audit: the query each index on `leads`, `lead_keys` and `lead_sources` serves, with
its plan on a seeded domain (`docs/indexes.md` records the output).

One domain gets `--leads` leads (default 1,000,000) with a realistic spread: 90% `new`, a
tail of other statuses (0.5% `converted`), 70% `medium` priority, 2% tagged, 10% in one of
20 campaigns, 5% assigned to a member, one key per lead and one provenance row each; a second
domain gets 10% as many, so domain conditions are not trivially true. Then each query is run
under `EXPLAIN (ANALYZE, BUFFERS)` after a warm-up, and the script prints the indexes the plan
uses, the time, and (with `--plans`) the plans. A referential action (`ON DELETE SET NULL` /
`CASCADE`) is shown as the statement PostgreSQL runs for it.

    python bench/index_audit.py                       # 1M leads, about 4 min here
    python bench/index_audit.py --leads 200000 --plans
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

import common

_SEED = """
INSERT INTO leads (domain_id, first_name, last_name, email, title, company_name,
                   company_domain, country, linkedin_url, status, priority, tags, campaign_id,
                   assigned_to, created_at)
SELECT %(domain)s,
       'First' || g, 'Last' || (g %% 50000),
       'lead' || g || '@company' || (g %% 20000) || '.example',
       (ARRAY['Founder','CTO','Head of Sales','VP Sales'])[1 + g %% 4],
       'Company ' || (g %% 20000), 'company' || (g %% 20000) || '.example',
       (ARRAY['US','DE','NO','IN','BR'])[1 + g %% 5],
       CASE WHEN g %% 2 = 0 THEN 'https://www.linkedin.com/in/lead-' || g END,
       CASE WHEN g %% 200 = 7 THEN 'converted' WHEN g %% 200 = 8 THEN 'rejected'
            WHEN g %% 100 = 9 THEN 'qualified' WHEN g %% 33 = 10 THEN 'responded'
            WHEN g %% 20 = 11 THEN 'contacted' ELSE 'new' END,
       CASE WHEN g %% 10 = 3 THEN 'high' WHEN g %% 5 = 1 THEN 'low' ELSE 'medium' END,
       CASE WHEN g %% 50 = 5 THEN ARRAY['vip'] ELSE '{}'::text[] END,
       CASE WHEN g %% 10 = 4 THEN (%(campaigns)s::uuid[])[1 + (g / 10) %% 20] END,
       CASE WHEN g %% 20 = 13 THEN %(member)s::uuid END,
       now() - make_interval(secs => g)
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
"""

_KEYS = """
INSERT INTO lead_keys (domain_id, key, lead_id)
SELECT domain_id, 'email:' || email, id FROM leads WHERE domain_id = %(domain)s
"""
_SOURCES = """
INSERT INTO lead_sources (domain_id, lead_id, data_source_id, job_id, external_id)
SELECT domain_id, id, %(source)s, %(job)s, 'x' || id FROM leads WHERE domain_id = %(domain)s
"""

LIST = (
    "SELECT id FROM leads WHERE domain_id = %(d)s AND deleted_at IS NULL {where} "
    "ORDER BY {sort} DESC, id DESC LIMIT 51"
)
SEARCH = (
    "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || "
    "coalesce(email, '') || ' ' || coalesce(company_name, '') || ' ' || coalesce(title, ''))"
)

#: (index, what needs it, SQL) — the queries are the ones the code sends (leads_repo,
#: pagination, leads_sink, console_stats) or PostgreSQL's referential actions
_MEMBER = (
    "AND (assigned_to = %(u)s OR campaign_id IN "
    "(SELECT id FROM campaigns WHERE domain_id = %(d)s AND created_by = %(u)s))"
)
_DAY = "AND created_at >= now() - interval '2 days' AND created_at < now() - interval '1 day'"
_OWNERS = (
    "SELECT k.key, o.lead_id FROM unnest(%(keys)s::text[]) AS k(key) CROSS JOIN LATERAL "
    "(SELECT lk.lead_id FROM lead_keys lk WHERE lk.domain_id = %(d)s AND lk.key = k.key "
    "LIMIT 1) o"
)
_BY_SOURCE = (
    "AND EXISTS (SELECT 1 FROM lead_sources s WHERE s.lead_id = leads.id "
    "AND s.data_source_id = %(s2)s)"
)
_PER_DAY = (
    "SELECT date(created_at), data_source_id, count(DISTINCT lead_id) FROM lead_sources "
    "WHERE domain_id = %(d2)s AND created_at >= now() - interval '30 days' GROUP BY 1, 2"
)
_PROVENANCE = (
    "SELECT lead_id, data_source_id, job_id, external_id FROM lead_sources "
    "WHERE lead_id = ANY(%(ids)s) ORDER BY id"
)


def _list(where: str = "", sort: str = "created_at") -> str:
    return LIST.format(where=where, sort=sort)


QUERIES: list[tuple[str, str, str]] = [
    ("ix_leads_domain_created", "GET /leads (default sort -created_at)", _list()),
    ("ix_leads_domain_created", "GET /leads?created_from=…&created_to=…", _list(_DAY)),
    ("ix_leads_domain_score_id", "GET /leads?sort=-score", _list(sort="score")),
    ("ix_leads_domain_updated", "GET /leads?sort=-updated_at", _list(sort="updated_at")),
    (
        "ix_leads_domain_status",
        "GET /leads?status=converted (0.5%)",
        _list("AND status = 'converted'"),
    ),
    ("ix_leads_domain_status", "GET /leads?status=new (90%)", _list("AND status = 'new'")),
    (
        "ix_leads_domain_status",
        "GET /leads?status=converted&sort=-score",
        _list("AND status = 'converted'", "score"),
    ),
    ("ix_leads_domain_priority", "GET /leads?priority=high (10%)", _list("AND priority = 'high'")),
    (
        "ix_leads_domain_priority",
        "GET /leads?priority=high&sort=-score",
        _list("AND priority = 'high'", "score"),
    ),
    (
        "ix_leads_campaign_created",
        "GET /leads?campaign_id=… (0.5%)",
        _list("AND campaign_id = %(c)s"),
    ),
    (
        "ix_leads_campaign_created",
        "ON DELETE SET NULL of campaigns",
        "UPDATE leads SET campaign_id = NULL WHERE campaign_id = %(c)s",
    ),
    ("ix_leads_assigned_to", "GET /leads as a member (assigned or own campaigns)", _list(_MEMBER)),
    (
        "ix_leads_assigned_to",
        "ON DELETE SET NULL of users",
        "UPDATE leads SET assigned_to = NULL WHERE assigned_to = %(u)s",
    ),
    ("ix_leads_tags", "GET /leads?tag=vip (2%)", _list("AND tags @> ARRAY['vip']")),
    (
        "ix_leads_search_trgm",
        "GET /leads?q=first12345",
        _list(f"AND {SEARCH} LIKE '%%first12345%%'"),
    ),
    (
        "ix_leads_domain_id",
        "ON DELETE CASCADE of domains",
        "DELETE FROM leads WHERE domain_id = %(d2)s",
    ),
    ("uq_lead_keys_domain_id_key", "sink owner read (one probe per key)", _OWNERS),
    ("pk_lead_keys", "sink owner read (one probe per key)", _OWNERS),
    (
        "ix_lead_keys_lead_id",
        "ON DELETE CASCADE of leads (erasure, purge, domains)",
        "DELETE FROM lead_keys WHERE lead_id = ANY(%(ids)s)",
    ),
    ("ix_lead_sources_lead_id", "GET /leads provenance of a page", _PROVENANCE),
    (
        "uq_lead_sources_job_id_lead_id",
        "sink provenance ON CONFLICT (job_id, lead_id)",
        "SELECT 1 FROM lead_sources WHERE job_id = %(j)s AND lead_id = ANY(%(ids)s)",
    ),
    ("ix_lead_sources_data_source_id", "GET /leads?data_source_id=…", _list(_BY_SOURCE)),
    (
        "ix_lead_sources_data_source_id",
        "ON DELETE SET NULL of data_sources",
        "UPDATE lead_sources SET data_source_id = NULL WHERE data_source_id = %(s2)s",
    ),
    ("ix_lead_sources_domain_id", "console overview: leads per day by source", _PER_DAY),
    ("pk_lead_sources", "provenance of a page (sorted by id after the lead_id probe)", _PROVENANCE),
]

_CAMPAIGN = """
INSERT INTO campaigns (domain_id, name, slug, created_by) SELECT %(d)s, 'c' || g, 'c' || g, %(u)s
FROM generate_series(1, 20) g RETURNING id
"""


_INDEX_NAME = re.compile(r"\b((?:ix|uq|pk)_[a-z_]+)\b")


def seed(db_url: str, leads: int) -> dict[str, Any]:
    import psycopg
    from sqlalchemy.orm import Session

    from models import job_states
    from runtime.db import make_engine
    from tests.factories import make_domain, make_job, make_source, make_user

    engine = make_engine(db_url, pool_size=1)
    ids: dict[str, Any] = {}
    for name, n in (("d", leads), ("d2", max(1, leads // 10))):
        domain = make_domain(engine)
        user = make_user(engine, domain)
        source = make_source(engine, domain, "csv", {"path": "/dev/null"})
        job = make_job(engine, domain, source, {}, user)
        with Session(engine) as session, session.begin():
            job_states.start(session, job)
        ids[name] = {"domain": domain, "user": user, "source": source, "job": job, "n": n}
        with psycopg.connect(db_url) as conn:
            campaigns = [r[0] for r in conn.execute(_CAMPAIGN, {"d": domain, "u": user})]
            step = 100_000
            for lo in range(1, n + 1, step):
                conn.execute(
                    _SEED,
                    {
                        "domain": domain,
                        "campaigns": campaigns,
                        "member": user,
                        "lo": lo,
                        "hi": min(n, lo + step - 1),
                    },
                )
                conn.commit()
            conn.execute(_KEYS, {"domain": domain})
            conn.execute(_SOURCES, {"domain": domain, "source": source, "job": job})
            conn.commit()
        ids[name]["campaign"] = campaigns[0]
    engine.dispose()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE leads, lead_keys, lead_sources")
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--plans", action="store_true", help="print every plan")
    args = parser.parse_args()

    import psycopg

    info = common.machine()
    with common.scratch_database("dashin_index_audit") as db_url:
        started = time.perf_counter()
        ids = seed(db_url, args.leads)
        print(f"seeded in {time.perf_counter() - started:.0f}s", flush=True)
        with psycopg.connect(db_url) as conn:
            d = ids["d"]
            sample = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM leads WHERE domain_id = %s LIMIT 50", (d["domain"],)
                )
            ]
            keys = [
                r[0]
                for r in conn.execute(
                    "SELECT key FROM lead_keys WHERE domain_id = %s LIMIT 5000", (d["domain"],)
                )
            ]
            params = {
                "d": d["domain"],
                "d2": ids["d2"]["domain"],
                "c": d["campaign"],
                "u": d["user"],
                "j": d["job"],
                "s2": ids["d2"]["source"],
                "ids": sample,
                "keys": keys,
            }
            existing = {
                r[0]
                for r in conn.execute(
                    "SELECT indexname FROM pg_indexes "
                    "WHERE tablename IN ('leads', 'lead_keys', 'lead_sources')"
                )
            }
            rows = []
            for index, need, sql in QUERIES:
                explain = f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"
                conn.execute(explain, params)  # warm-up
                conn.rollback()  # the DML ones change nothing
                plan = "\n".join(r[0] for r in conn.execute(explain, params))
                conn.rollback()
                used = sorted(set(_INDEX_NAME.findall(plan)))
                ms = re.search(r"Execution Time: ([\d.]+) ms", plan)
                if index not in existing:
                    needed = "dropped (0018)"
                else:
                    needed = "yes" if index in used else "no"
                rows.append(
                    [index, need, ", ".join(used) or "seq scan", ms.group(1) if ms else "", needed]
                )
                if args.plans:
                    print(f"\n-- {index}: {need}\n{sql}\n{plan}", flush=True)
            counts = {
                t: conn.execute(
                    "SELECT count(*) FROM pg_indexes WHERE tablename = %s", (t,)
                ).fetchone()[0]  # type: ignore[index]
                for t in ("leads", "lead_keys", "lead_sources")
            }
    info["loadavg_end"] = common.loadavg()
    common.print_machine(info)
    common.print_table(
        f"Index audit on {args.leads:,} leads (indexes now: {counts})",
        ["index", "query", "plan uses", "ms", "needed"],
        rows,
    )


if __name__ == "__main__":
    main()
