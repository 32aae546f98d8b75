"""Benchmark: what each index, trigger and foreign key on `leads` costs a bulk write.

The same parsed CSV rows as `bench/csv_ingest.py` (its generator, its connector) are COPYed
into `leads` 5,000 per page (the sink's page), once per variant. A variant removes one thing
— an index, a trigger, a foreign key, or sets a GIN storage parameter — inside a transaction
that is rolled back at the end (then `VACUUM leads`), so every variant starts from the same
empty table and the schema is untouched afterwards. Rates are rows per second of the COPY
alone, medians over `--rounds`; the variants of one round run back to back in a rotated
order, so load that moves during the run spreads over all of them.

    python bench/write_costs.py                      # 100k rows, 3 rounds
    python bench/write_costs.py --rows 50000 --rounds 5 --json
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import common
import csv_ingest

from records import LEAD_FIELDS

PAGE = 5000
#: marker in a variant: COPY a score column (and disable the pre-0018 trigger that would
#: overwrite it)
GIVE_SCORE = "give score"
_DISABLE_OLD_SCORE = (
    "DO $$ BEGIN IF EXISTS (SELECT FROM pg_trigger WHERE tgname = 'trg_leads_score') "
    "THEN ALTER TABLE leads DISABLE TRIGGER trg_leads_score; END IF; END $$"
)

#: variant → statements run (inside the rolled-back transaction) before the COPYs
VARIANTS: dict[str, list[str]] = {
    "as is": [],
    # before migration 0018 the trigger scored every row; since, a row that comes with a score
    # (as the sink's do) skips it: this variant disables it before, gives the score after
    "- score trigger (score given)": [GIVE_SCORE],
    "- metrics+stats triggers": [
        "ALTER TABLE leads DISABLE TRIGGER trg_leads_metrics_insert",
        "ALTER TABLE leads DISABLE TRIGGER trg_leads_stats_insert",
    ],
    "- trigram GIN": ["DROP INDEX ix_leads_search_trgm"],
    "trigram GIN pending 64 MB": [
        "ALTER INDEX ix_leads_search_trgm SET (gin_pending_list_limit = 65536)"
    ],
    "trigram GIN pending 1 GB (merged later)": [
        "ALTER INDEX ix_leads_search_trgm SET (gin_pending_list_limit = 1048576)"
    ],
    "trigram GIN fastupdate off": ["ALTER INDEX ix_leads_search_trgm SET (fastupdate = off)"],
    "- tags GIN": ["DROP INDEX ix_leads_tags"],
    "- ix_leads_domain_id": ["DROP INDEX IF EXISTS ix_leads_domain_id"],
    "- FKs (domain, campaign, user)": [
        "ALTER TABLE leads DROP CONSTRAINT fk_leads_domain_id_domains",
        "ALTER TABLE leads DROP CONSTRAINT fk_leads_campaign_id_campaigns",
        "ALTER TABLE leads DROP CONSTRAINT fk_leads_assigned_to_users",
    ],
}


def secondary_indexes(conn: Any) -> list[str]:
    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'leads' AND indexname <> 'pk_leads'"
    ).fetchall()
    return [r[0] for r in rows]


def run_variant(
    db_url: str, pages: list[list[Any]], domain_id: uuid.UUID, setup: list[str]
) -> float:
    import psycopg

    give = GIVE_SCORE in setup
    columns = ", ".join(("id", "domain_id", *(["score"] if give else []), *LEAD_FIELDS))
    score = [30] if give else []
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            for statement in setup:
                cur.execute(_DISABLE_OLD_SCORE if statement == GIVE_SCORE else statement)
            busy = 0.0
            for page in pages:
                started = time.perf_counter()
                with cur.copy(f"COPY leads ({columns}) FROM STDIN") as copy:
                    for values in page:
                        copy.write_row((uuid.uuid4(), domain_id, *score, *values))
                busy += time.perf_counter() - started
        conn.rollback()
        # the rolled-back rows stay in the heap and in the GIN pending list until vacuumed:
        # without this, every later variant would pay for the earlier ones
        conn.autocommit = True
        conn.execute("VACUUM leads")
    return busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from runtime.db import make_engine
    from tests.factories import make_domain

    info = common.machine()
    fd, name = tempfile.mkstemp(prefix="dashin-costs-", suffix=".csv")
    os.close(fd)
    path = Path(name)
    samples: dict[str, list[float]] = {}
    try:
        csv_ingest.generate(path, args.rows)
        rows = [
            [getattr(r, c) for c in LEAD_FIELDS]
            for page in csv_ingest.parsed_pages(path)
            for r in page
        ]
        pages = [rows[i : i + PAGE] for i in range(0, len(rows), PAGE)]
        with common.scratch_database("dashin_bench_costs") as db_url:
            engine = make_engine(db_url, pool_size=1)
            domain_id = make_domain(engine)
            engine.dispose()
            names = list(VARIANTS)
            variants = dict(VARIANTS)
            import psycopg

            with psycopg.connect(db_url) as conn:
                everything = [f'DROP INDEX "{i}"' for i in secondary_indexes(conn)]
            variants["pk only, no triggers"] = [
                *everything,
                "ALTER TABLE leads DISABLE TRIGGER USER",
                GIVE_SCORE,
            ]
            names.append("pk only, no triggers")
            for r in range(args.rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for variant in order:
                    seconds = run_variant(db_url, pages, domain_id, variants[variant])
                    samples.setdefault(variant, []).append(seconds)
                    if not args.json:
                        print(
                            f"  round {r + 1} {variant:<32} {len(rows) / seconds:>9,.0f} rows/s"
                            f"  load {common.loadavg()[0]}",
                            flush=True,
                        )
    finally:
        path.unlink(missing_ok=True)
    info["loadavg_end"] = common.loadavg()
    base = common.median(samples["as is"])
    results = {
        v: {
            "rows_per_s": round(len(rows) / common.median(s)),
            "time_vs_as_is": round(common.median(s) / base, 3),
        }
        for v, s in samples.items()
    }
    if args.json:
        common.emit_json(
            {"rows": len(rows), "rounds": args.rounds, "variants": results, "machine": info}
        )
        return
    common.print_machine(info)
    common.print_table(
        f"COPY into leads, {len(rows):,} rows in pages of {PAGE}, median of {args.rounds}",
        ["variant", "rows/s", "time vs as is"],
        [[v, r["rows_per_s"], r["time_vs_as_is"]] for v, r in results.items()],
    )


if __name__ == "__main__":
    main()
