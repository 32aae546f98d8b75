"""Benchmark: CSV ingest end to end against the database's own limits, on the same rows.

A realistic lead CSV is generated (Apollo-like header, quoted cells, 20% of rows repeat an
earlier row's email — half within the same page, half pages earlier — with a different case
and a phone number the first copy lacked, and 1% bad rows: no identity or misaligned). Then, in
one run, back to back, for several rounds (medians reported):

* **end to end**: a `csv` data source reading the file from a server path, a queued job, and
  `workers.runner.Runner.run` in a fresh child process (one worker process: connector → one-page
  prefetch → sink → PostgreSQL, fenced page transactions, counters, logs, row errors). The child
  reports the wall time of `run` and its peak RSS (`VmHWM`).
* **(b) hand-written SQL**: the sink's work written lean on already-parsed rows — keys and
  in-page folding in Python, COPY to temp staging, one key join to match, INSERT new leads, fill
  empty fields of matched ones, attach keys, provenance; one transaction per page. Parsing is
  not timed. This is the schema's practical limit.
* **(a) raw COPY** of the parsed clean rows into `LIKE leads INCLUDING ALL` (every index),
  one COPY + commit per page: the write limit. Parsing is not timed.
* **(r) the reference** the issue names, built exactly so: a table `bench_ref_leads` with
  `domain_id`, the 13 lead columns and `email_norm`, one unique index `(domain_id, email_norm)`
  and nothing else; the same parsed rows COPYed into a temp staging table 10,000 at a time, then
  one `INSERT … SELECT DISTINCT ON (domain_id, email_norm) … ON CONFLICT … DO UPDATE SET
  col = coalesce(t.col, excluded.col)` and a commit per batch. It is what a one-table,
  one-key schema costs on this machine; parsing is not timed.
* **(c) naive ORM**: SQLAlchemy objects, one identity lookup per row, commit per page — on the
  first `--orm-rows` rows only (it is slow), its rate extrapolated.

"all-new" writes the file into an empty domain; "all-matching" writes the same file again into
the same domain (every row matches an existing lead). Rates are file rows per second (bad rows
included) so that ratios are ratios of time on the same input.

    python bench/csv_ingest.py                      # 100k rows, 3 rounds, about 5 min here
    python bench/csv_ingest.py --rows 1000000 --rounds 1
    python bench/csv_ingest.py --rows 5000000 --only-e2e --rounds 1   # RSS flatness
    python bench/csv_ingest.py --rows 300000 --rounds 3 --steps e2e,r   # issue 16's ratio
    python bench/csv_ingest.py --rows 300000 --rounds 1 --steps e2e,r --existing 1000000
    python bench/csv_ingest.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import common

from records import LEAD_FIELDS, LeadRecord

PAGE_SIZE = 5000
HEADER = (
    "First Name,Last Name,Title,Company,Company Website,Industry,# Employees,Email,"
    "Person Linkedin Url,Phone,City,State,Country\r\n"
)
FIRST = ("Olivia", "Noah", "Aisha", "Leo", "Fatima", "Rafael", "Ingrid", "Tomás", "Sophia", "Li")
LAST = ("Chen", "Haddad", "Okafor", "Schmidt", "Moreau", "Novak", "Patel", "Fernández", "Kowal")
COMPANIES = ("Contoso", "Fabrikam", "Northwind", "Proseware", "Tailspin", "Woodgrove", "Litware")
TITLES = ("Founder", "CTO", "Head of Sales", "Growth Lead", "Operations Manager", "VP Sales")
PLACES = (("Austin", "TX", "United States"), ("Berlin", "", "Germany"), ("Kraków", "", "Poland"))
LEAD_COLUMNS = LEAD_FIELDS


# ---- the file --------------------------------------------------------------------------------


def person_of(i: int) -> int:
    """Row `i` shows person `person_of(i)`; rows with i % 5 == 4 repeat an earlier person."""
    if i % 5 != 4 or i < 5:
        return i
    # half the repeats within 200 rows (same page), half anywhere earlier
    back = 5 * (i % 40) if (i // 5) % 2 == 0 else 5 * ((i * 7919) % max(1, i // 5 - 1))
    return i - 1 - back  # ≡ 3 (mod 5): an original, never bad (bad rows are ≡ 2)


def row(i: int) -> str:
    if i % 100 == 37:  # 1%: bad rows
        if i % 200 == 37:
            return "Nobody,Known,Analyst,Acme,https://acme.example,Software,11-50,n/a,,,,,\r\n"
        return "Mis,Aligned,CTO,Acme,acme.example,Software,11-50,x@acme.example,,,,,,extra\r\n"
    p = person_of(i)
    first, last = FIRST[p % len(FIRST)], LAST[p % len(LAST)]
    company = COMPANIES[p % len(COMPANIES)]
    domain = company.lower() + ".example"
    city, state, country = PLACES[p % len(PLACES)]
    email = f"{first}.{last}.{p}@{domain}".lower()
    linkedin = f"https://www.linkedin.com/in/{first}-{last}-{p}".lower() if p % 2 else ""
    title = TITLES[p % len(TITLES)]
    name = f'"{company}, Inc."' if p % 13 == 0 else company
    phone = ""
    if p != i:  # the repeat: other case, padded, and a phone the first copy lacked
        email = f" {email.upper()} "
        phone = f"+1 512 555 {p % 10000:04d}"
    return (
        f"{first},{last},{title},{name},https://www.{domain},Software,51-200,{email},"
        f"{linkedin},{phone},{city},{state},{country}\r\n"
    )


def generate(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        for start in range(0, rows, 20_000):
            out.write("".join(row(i) for i in range(start, min(rows, start + 20_000))))


def parsed_pages(path: Path, limit: int | None = None) -> Iterator[list[LeadRecord]]:
    """The file's clean records, page by page, parsed by the real connector (not timed)."""
    from connectors.kit.testing import LocalRunContext
    from connectors.providers.csv.connector import CsvConfig, CsvConnector, CsvParams

    ctx = LocalRunContext(uploads={"f": path})
    seen = 0
    for page in CsvConnector().pages(
        CsvConfig(), CsvParams(file_id="f", page_size=PAGE_SIZE), None, ctx
    ):
        records = page.records
        if limit is not None:
            records = records[: max(0, limit - seen)]
        seen += len(page.records) + len(page.errors)
        if records:
            yield records
        if limit is not None and seen >= limit:
            return


# ---- (b) the sink's work, hand-written ----------------------------------------------------


_B_SETUP = f"""
CREATE TEMP TABLE IF NOT EXISTS b_stage (
    idx integer PRIMARY KEY, new_id uuid NOT NULL, lead_id uuid, external_id text, raw jsonb,
    {", ".join(f"{c} text" for c in LEAD_COLUMNS)}
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS b_keys (idx integer, pos integer, key text)
    ON COMMIT DELETE ROWS;
"""
_B_STATEMENTS = (
    """UPDATE b_stage s SET lead_id = m.lead_id FROM (
         SELECT DISTINCT ON (k.idx) k.idx, lk.lead_id FROM b_keys k
         JOIN lead_keys lk ON lk.domain_id = %(d)s AND lk.key = k.key ORDER BY k.idx, k.pos) m
       WHERE s.idx = m.idx""",
    f"""INSERT INTO leads (id, domain_id, {", ".join(LEAD_COLUMNS)})
        SELECT new_id, %(d)s, {", ".join(LEAD_COLUMNS)} FROM b_stage WHERE lead_id IS NULL""",
    f"""UPDATE leads l SET {", ".join(f"{c} = COALESCE(l.{c}, s.{c})" for c in LEAD_COLUMNS)}
        FROM (SELECT DISTINCT ON (lead_id) * FROM b_stage WHERE lead_id IS NOT NULL
              ORDER BY lead_id, idx) s
        WHERE l.id = s.lead_id
          AND ({" OR ".join(f"(l.{c} IS NULL AND s.{c} IS NOT NULL)" for c in LEAD_COLUMNS)})""",
    """INSERT INTO lead_keys (domain_id, key, lead_id)
       SELECT %(d)s, k.key, COALESCE(s.lead_id, s.new_id) FROM b_keys k JOIN b_stage s USING (idx)
       ON CONFLICT (domain_id, key) DO NOTHING""",
    """INSERT INTO lead_sources (domain_id, lead_id, data_source_id, job_id, external_id, raw)
       SELECT DISTINCT ON (COALESCE(lead_id, new_id)) %(d)s, COALESCE(lead_id, new_id),
              %(s)s, %(j)s, external_id, raw
       FROM b_stage ORDER BY COALESCE(lead_id, new_id), idx
       ON CONFLICT (job_id, lead_id) DO NOTHING""",
)


def write_b(conn: Any, records: list[LeadRecord], params: dict[str, Any]) -> None:
    """One page of (b), committed."""
    groups: list[list[Any]] = []  # [values..., keys]
    owner: dict[str, int] = {}
    for r in records:
        keys = []
        if r.email:
            keys.append("email:" + r.email)
        if r.linkedin_url:
            keys.append("li:" + r.linkedin_url)
        if not keys:
            continue
        found = next((owner[k] for k in keys if k in owner), None)
        values = [getattr(r, c) for c in LEAD_COLUMNS]
        if found is None:
            raw = json.dumps(r.raw) if r.raw is not None else None
            groups.append([r.external_id, raw, *values, keys])
            for k in keys:
                owner[k] = len(groups) - 1
        else:
            g = groups[found]
            for n, v in enumerate(values):
                if g[2 + n] is None:
                    g[2 + n] = v
            for k in keys:
                if k not in owner:
                    owner[k] = found
                    g[-1].append(k)
    with conn.cursor() as cur:
        cur.execute(_B_SETUP)
        cols = ("idx", "new_id", "external_id", "raw", *LEAD_COLUMNS)
        with cur.copy(f"COPY b_stage ({', '.join(cols)}) FROM STDIN") as copy:
            for idx, g in enumerate(groups):
                copy.write_row((idx, uuid.uuid4(), *g[:-1]))
        with cur.copy("COPY b_keys (idx, pos, key) FROM STDIN") as copy:
            for idx, g in enumerate(groups):
                for pos, k in enumerate(g[-1]):
                    copy.write_row((idx, pos, k))
        for statement in _B_STATEMENTS:
            cur.execute(statement, params)
    conn.commit()


def run_b(db_url: str, path: Path, domain_id: uuid.UUID, source_id: uuid.UUID) -> float:
    import psycopg

    # provenance rows of (b) carry no job (there is no job row): like a new job's, they are new
    params = {"d": domain_id, "s": source_id, "j": None}
    busy = 0.0
    with psycopg.connect(db_url) as conn:
        for records in parsed_pages(path):
            started = time.perf_counter()
            write_b(conn, records, params)
            busy += time.perf_counter() - started
    return busy


# ---- (a) raw COPY --------------------------------------------------------------------------


def run_a(db_url: str, path: Path, domain_id: uuid.UUID, *, gin: bool = True) -> float:
    """(a); with `gin=False` the copy lacks the GIN (trigram, tags) indexes: their cost."""
    import psycopg

    busy = 0.0
    with psycopg.connect(db_url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_leads_copy")
        conn.execute("CREATE TABLE bench_leads_copy (LIKE leads INCLUDING ALL)")
        if not gin:
            for (index,) in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'bench_leads_copy' "
                "AND indexdef ILIKE '%USING gin%'"
            ).fetchall():
                conn.execute(f'DROP INDEX "{index}"')
        conn.commit()
        columns = ", ".join(("domain_id", *LEAD_COLUMNS))
        for records in parsed_pages(path):
            started = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY bench_leads_copy ({columns}) FROM STDIN") as copy,
            ):
                for r in records:
                    copy.write_row((domain_id, *(getattr(r, c) for c in LEAD_COLUMNS)))
            conn.commit()
            busy += time.perf_counter() - started
        conn.execute("DROP TABLE bench_leads_copy")
        conn.commit()
    return busy


# ---- (r) the one-table reference -------------------------------------------------------------

REF_BATCH = 10_000
_R_SETUP = f"""
CREATE TABLE IF NOT EXISTS bench_ref_leads (
    domain_id uuid NOT NULL,
    {", ".join(f"{c} text" for c in LEAD_COLUMNS)},
    email_norm text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS bench_ref_leads_key ON bench_ref_leads (domain_id, email_norm);
"""
_R_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS r_stage (
    seq integer, domain_id uuid, {", ".join(f"{c} text" for c in LEAD_COLUMNS)}, email_norm text
) ON COMMIT DELETE ROWS
"""
_R_UPSERT = f"""
INSERT INTO bench_ref_leads AS t (domain_id, {", ".join(LEAD_COLUMNS)}, email_norm)
SELECT DISTINCT ON (domain_id, email_norm) domain_id, {", ".join(LEAD_COLUMNS)}, email_norm
FROM r_stage WHERE email_norm IS NOT NULL ORDER BY domain_id, email_norm, seq
ON CONFLICT (domain_id, email_norm) DO UPDATE SET
    {", ".join(f"{c} = coalesce(t.{c}, excluded.{c})" for c in LEAD_COLUMNS)}
"""


def run_r(db_url: str, path: Path, domain_id: uuid.UUID) -> float:
    """(r): the same rows into a one-table, one-unique-index schema, 10,000 per batch."""
    import psycopg

    busy = 0.0
    columns = ", ".join(("seq", "domain_id", *LEAD_COLUMNS, "email_norm"))

    def flush(conn: Any, batch: list[LeadRecord]) -> float:
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(_R_STAGE)
            with cur.copy(f"COPY r_stage ({columns}) FROM STDIN") as copy:
                for seq, r in enumerate(batch):
                    email = r.email.strip().lower() if r.email else None
                    copy.write_row((seq, domain_id, *(getattr(r, c) for c in LEAD_COLUMNS), email))
            cur.execute(_R_UPSERT)
        conn.commit()
        return time.perf_counter() - started

    with psycopg.connect(db_url) as conn:
        conn.execute(_R_SETUP)
        conn.commit()
        batch: list[LeadRecord] = []
        for records in parsed_pages(path):
            batch.extend(records)
            while len(batch) >= REF_BATCH:
                busy += flush(conn, batch[:REF_BATCH])
                del batch[:REF_BATCH]
        if batch:
            busy += flush(conn, batch)
    return busy


# ---- (c) the naive ORM path -----------------------------------------------------------------


def run_c(engine: Any, path: Path, domain_id: uuid.UUID, source_id: uuid.UUID, limit: int) -> float:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from models import Lead, LeadKey, LeadSource

    busy = 0.0
    for records in parsed_pages(path, limit):
        started = time.perf_counter()
        with Session(engine) as session:
            for r in records:
                keys = [
                    k
                    for k in (
                        r.email and "email:" + r.email,
                        r.linkedin_url and "li:" + r.linkedin_url,
                    )
                    if k
                ]
                owner = None
                for k in keys:
                    owner = session.scalar(
                        select(LeadKey).where(LeadKey.domain_id == domain_id, LeadKey.key == k)
                    )
                    if owner is not None:
                        break
                if owner is None:
                    lead = Lead(
                        id=uuid.uuid4(),
                        domain_id=domain_id,
                        **{c: getattr(r, c) for c in LEAD_COLUMNS},
                    )
                    session.add(lead)
                    for k in keys:
                        session.add(LeadKey(domain_id=domain_id, key=k, lead_id=lead.id))
                    session.add(
                        LeadSource(
                            domain_id=domain_id,
                            lead_id=lead.id,
                            data_source_id=source_id,
                            raw=r.raw,
                        )
                    )
                else:
                    existing = session.get(Lead, owner.lead_id)
                    assert existing is not None
                    for c in LEAD_COLUMNS:
                        if getattr(existing, c) is None and getattr(r, c) is not None:
                            setattr(existing, c, getattr(r, c))
            session.commit()
        busy += time.perf_counter() - started
    return busy


# ---- end to end, in a child process -------------------------------------------------------


def child_main(db_url: str, job_id: str) -> None:
    """`--child`: run one job with the real Runner and report time and peak RSS."""
    import redis

    from runtime.db import make_engine
    from runtime.settings import get_settings
    from workers.runner import Runner

    common.use_services(db_url, DASHIN_ALLOW_SERVER_PATHS="true")
    engine = make_engine(db_url, pool_size=3)
    client = redis.Redis.from_url(common.ensure_redis())
    runner = Runner(engine, get_settings(), client, threading.Event())
    rss_before = common.vm_rss_mb()
    started = time.perf_counter()
    cpu_started = time.process_time()
    outcome = runner.run(uuid.UUID(job_id))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "outcome": outcome,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "rss_before_mb": rss_before,
                "rss_peak_mb": common.vm_hwm_mb(),
            }
        )
    )
    engine.dispose()


def run_e2e(db_url: str, engine: Any, world: dict[str, uuid.UUID]) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from models import Job, job_states
    from tests.factories import make_job

    job_id = make_job(engine, world["domain"], world["source"], {}, world["user"])
    with Session(engine) as session, session.begin():
        job_states.start(session, job_id)
    out = subprocess.run(
        [sys.executable, __file__, "--child", db_url, str(job_id)],
        capture_output=True,
        text=True,
        check=False,
        env=common.service_env(db_url, DASHIN_ALLOW_SERVER_PATHS="true"),
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith('{"outcome"')]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"end-to-end child failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        result["counters"] = {
            k: int(getattr(job, k))
            for k in ("fetched", "inserted", "updated", "unchanged", "rejected", "pages")
        }
        result["status"] = job.status
    if result["status"] != "completed":
        raise RuntimeError(f"job ended {result['status']}: {job.error}\n{out.stderr[-4000:]}")
    return result


_SEED_EXISTING = """
WITH l AS (
    INSERT INTO leads (domain_id, first_name, last_name, email, company_name, score)
    SELECT %(d)s, 'Old', 'Lead' || g, 'old' || g || '@seed.example', 'Seed Co', 22
    FROM generate_series(1, %(n)s) g
    RETURNING id, email
), k AS (
    INSERT INTO lead_keys (domain_id, key, lead_id) SELECT %(d)s, 'email:' || email, id FROM l
)
INSERT INTO lead_sources (domain_id, lead_id) SELECT %(d)s, id FROM l
"""
_SEED_REF = """
INSERT INTO bench_ref_leads (domain_id, first_name, last_name, email, company_name, email_norm)
SELECT %(d)s, 'Old', 'Lead' || g, 'old' || g || '@seed.example', 'Seed Co',
       'old' || g || '@seed.example'
FROM generate_series(1, %(n)s) g
"""


def seed_existing(db_url: str, domain_id: uuid.UUID, ref_domain: uuid.UUID, n: int) -> None:
    """`n` leads (with a key and a provenance row each) in the end-to-end domain, and `n` rows
    in (r)'s table for its domain, vacuumed: the domain's size before the run (not timed)."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(db_url) as conn:
        conn.execute(_SEED_EXISTING, {"d": domain_id, "n": n})
        conn.execute(_R_SETUP)
        conn.execute(_SEED_REF, {"d": ref_domain, "n": n})
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE leads, lead_keys, lead_sources, bench_ref_leads")
    print(f"seeded {n:,} existing leads in {time.perf_counter() - started:.0f}s", file=sys.stderr)


def new_world(engine: Any, path: Path) -> dict[str, uuid.UUID]:
    from tests.factories import make_domain, make_source, make_user

    domain = make_domain(engine)
    user = make_user(engine, domain)
    source = make_source(engine, domain, "csv", {"path": str(path), "page_size": PAGE_SIZE})
    return {"domain": domain, "user": user, "source": source}


# ---- orchestration --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="data rows in the file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--orm-rows", type=int, default=10_000, help="rows for (c), per pass")
    parser.add_argument("--only-e2e", action="store_true", help="end to end only (RSS runs)")
    parser.add_argument(
        "--existing",
        type=int,
        default=0,
        help="leads already in the domain (end to end and (r)) before each round: growth curve",
    )
    parser.add_argument(
        "--steps",
        default="e2e,b,a,r,c",
        help="comma list of runs among e2e, b, a, r, c (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", nargs=2, metavar=("DB_URL", "JOB_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return

    from runtime.db import make_engine

    info = common.machine()
    fd, name = tempfile.mkstemp(prefix="dashin-ingest-", suffix=".csv")
    os.close(fd)
    path = Path(name)
    samples: dict[str, list[float]] = {}
    e2e_runs: list[dict[str, Any]] = []

    def note(key: str, seconds: float) -> None:
        samples.setdefault(key, []).append(seconds)

    try:
        t0 = time.perf_counter()
        generate(path, args.rows)
        if not args.json:
            print(
                f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) "
                f"in {time.perf_counter() - t0:.1f}s",
                flush=True,
            )
        with common.scratch_database("dashin_bench_csv") as db_url:
            common.use_services(db_url, DASHIN_ALLOW_SERVER_PATHS="true")
            engine = make_engine(db_url, pool_size=2)
            for r in range(args.rounds):
                we, wb, wc = new_world(engine, path), new_world(engine, path), None
                ref_domain = uuid.uuid4()  # (r)'s table has no foreign keys: any id will do
                if args.existing:
                    seed_existing(db_url, we["domain"], ref_domain, args.existing)
                steps: list[tuple[str, Any]] = [
                    ("e2e_new", lambda we=we: run_e2e(db_url, engine, we)),
                    ("b_new", lambda wb=wb: run_b(db_url, path, wb["domain"], wb["source"])),
                    ("a", lambda wb=wb: run_a(db_url, path, wb["domain"])),
                    ("a_nogin", lambda wb=wb: run_a(db_url, path, wb["domain"], gin=False)),
                    ("e2e_match", lambda we=we: run_e2e(db_url, engine, we)),
                    ("b_match", lambda wb=wb: run_b(db_url, path, wb["domain"], wb["source"])),
                    ("r_new", lambda d=ref_domain: run_r(db_url, path, d)),
                    ("r_match", lambda d=ref_domain: run_r(db_url, path, d)),
                ]
                wanted = {"e2e"} if args.only_e2e else set(args.steps.split(","))
                steps = [s for s in steps if s[0].split("_")[0] in wanted]
                if r == 0 and "c" in wanted:
                    wc = new_world(engine, path)
                    steps.append(
                        (
                            "c_new",
                            lambda wc=wc: run_c(
                                engine, path, wc["domain"], wc["source"], args.orm_rows
                            ),
                        )
                    )
                    steps.append(
                        (
                            "c_match",
                            lambda wc=wc: run_c(
                                engine, path, wc["domain"], wc["source"], args.orm_rows
                            ),
                        )
                    )
                if r % 2 == 1:  # alternate who goes first within each pair
                    order = {
                        "b_new": 0,
                        "r_new": 1,
                        "e2e_new": 2,
                        "a_nogin": 3,
                        "a": 4,
                        "b_match": 5,
                        "r_match": 6,
                        "e2e_match": 7,
                    }
                    steps.sort(key=lambda s: order.get(s[0], 9))
                for key, step in steps:
                    value = step()
                    if isinstance(value, dict):
                        value["round"], value["kind"] = r, key
                        e2e_runs.append(value)
                        note(key, value["seconds"])
                    else:
                        note(key, value)
                    if not args.json:
                        secs = samples[key][-1]
                        n = args.orm_rows if key.startswith("c_") else args.rows
                        print(
                            f"  round {r + 1} {key:<10} {secs:7.2f}s {n / secs:>10,.0f} rows/s"
                            f"  load {common.loadavg()[0]}",
                            flush=True,
                        )
            engine.dispose()
    finally:
        path.unlink(missing_ok=True)
    info["loadavg_end"] = common.loadavg()

    def rate(key: str) -> float:
        n = args.orm_rows if key.startswith("c_") else args.rows
        return n / common.median(samples[key]) if key in samples else float("nan")

    rows: list[list[Any]] = []
    results: dict[str, Any] = {"rows": args.rows, "rounds": args.rounds, "page_size": PAGE_SIZE}
    for mode in ("new", "match"):
        e2e = rate(f"e2e_{mode}")
        b, c, a = rate(f"b_{mode}"), rate(f"c_{mode}"), rate("a")
        ref = rate(f"r_{mode}")
        results[mode] = {
            "e2e_rows_per_s": round(e2e),
            "b_rows_per_s": round(b) if b == b else None,
            "a_rows_per_s": round(a) if a == a else None,
            "c_rows_per_s": round(c) if c == c else None,
            "a_without_gin_rows_per_s": round(rate("a_nogin")) if "a_nogin" in samples else None,
            "e2e_over_b": round(e2e / b, 3) if b == b else None,
            "e2e_over_a": round(e2e / a, 3) if a == a else None,
            "e2e_over_c": round(e2e / c, 2) if c == c else None,
            "r_rows_per_s": round(ref) if ref == ref else None,
            "e2e_over_r": round(e2e / ref, 3) if ref == ref else None,
        }
        # each round runs end to end and (b) back to back: their ratio cancels most of the
        # load that moves between rounds on a shared machine
        for other in ("b", "r"):
            if f"{other}_{mode}" in samples and f"e2e_{mode}" in samples:
                pairs = zip(samples[f"{other}_{mode}"], samples[f"e2e_{mode}"], strict=True)
                per_round = [round(o_s / e_s, 3) for o_s, e_s in pairs]
                results[mode][f"e2e_over_{other}_per_round"] = per_round
                results[mode][f"e2e_over_{other}_round_median"] = round(common.median(per_round), 3)
        label = "all-new" if mode == "new" else "all-matching"
        rows.append(
            [label, e2e, b, ref, a, rate("a_nogin"), c, e2e / b, e2e / ref, e2e / a, e2e / c]
        )
    peaks = [run["rss_peak_mb"] for run in e2e_runs]
    results["rss_peak_mb"] = round(max(peaks), 1) if peaks else None
    results["rss_before_mb"] = (
        round(min(r["rss_before_mb"] for r in e2e_runs), 1) if e2e_runs else None
    )
    results["e2e_cpu_s_median"] = (
        round(common.median([r["cpu_seconds"] for r in e2e_runs]), 2) if e2e_runs else None
    )
    results["samples_s"] = {k: [round(v, 3) for v in vs] for k, vs in samples.items()}
    results["e2e_counters"] = {r["kind"]: r["counters"] for r in e2e_runs if r["round"] == 0}
    results["machine"] = info
    if args.json:
        common.emit_json(results)
        return
    common.print_machine(info)
    common.print_table(
        f"CSV ingest, {args.rows:,} rows, page {PAGE_SIZE}, median of {args.rounds} "
        "(rows/s of file rows)",
        [
            "run",
            "end-to-end",
            "(b) SQL",
            "(r) ref",
            "(a) COPY",
            "(a) no GIN",
            "(c) ORM",
            "e2e/(b)",
            "e2e/(r)",
            "e2e/(a)",
            "e2e/(c)",
        ],
        rows,
    )
    print(
        f"\nend-to-end worker process: RSS before {results['rss_before_mb']} MB, "
        f"peak {results['rss_peak_mb']} MB; median CPU {results['e2e_cpu_s_median']} s/run"
    )
    print(f"counters (round 1): {results['e2e_counters']}")
    for mode in ("new", "match"):
        for other in ("b", "r"):
            if f"e2e_over_{other}_per_round" in results[mode]:
                print(
                    f"e2e/({other}) {mode} per round: "
                    f"{results[mode][f'e2e_over_{other}_per_round']}, "
                    f"median {results[mode][f'e2e_over_{other}_round_median']}"
                )


if __name__ == "__main__":
    main()
