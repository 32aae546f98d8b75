"""analytics aggregates: lead_stats, lead counts per domain, campaign and UTC bucket, kept by triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00

`lead_stats` holds, per (domain, campaign, grain, bucket), the live leads created in the bucket,
per status and per qualification score; `models.lead_stats` explains the grains (15 minutes, an
hour, a UTC day) and `models.analytics_repo` how analytics read them.

Statement-level AFTER INSERT/UPDATE/DELETE triggers with transition tables fold each statement's
net change into it, like `campaign_metrics` (0002): the lead sink inserts a page of thousands of
leads with one INSERT ... SELECT, which then costs one upsert per touched bucket, not one per
lead. Rows are upserted in key order (`ORDER BY` the unique key), so two transactions touching
the same buckets lock them in the same order and queue instead of deadlocking; the upsert adds
(`n = n + EXCLUDED.n`), so neither loses counts.

The SQL below is frozen on purpose (a migration is history).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("new", "contacted", "responded", "qualified", "rejected", "converted")
SCORES = ("1", "2", "3", "4", "5")
COUNTS = ("leads", *STATUSES, *(f"q{s}" for s in SCORES), "q_other")
KEY = "domain_id, grain, bucket, campaign_id"
GRAINS = "(VALUES (15::smallint), (60::smallint), (1440::smallint)) AS grains(grain)"
# UTC-aligned buckets whatever the session's TimeZone: date_bin counts absolute time
ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"

_OTHER_SCORE = "d.q IS NOT NULL AND d.q NOT IN ('1', '2', '3', '4', '5')"
_SUMS = ",\n".join(
    [
        "            sum(d.n) AS leads",
        *(
            f"            coalesce(sum(d.n) FILTER (WHERE d.status = '{s}'), 0) AS {s}"
            for s in STATUSES
        ),
        *(f"            coalesce(sum(d.n) FILTER (WHERE d.q = '{s}'), 0) AS q{s}" for s in SCORES),
        f"            coalesce(sum(d.n) FILTER (WHERE {_OTHER_SCORE}), 0) AS q_other",
    ]
)
_COLUMNS = ", ".join(COUNTS)
_ADD = ", ".join(f"{c} = s.{c} + EXCLUDED.{c}" for c in COUNTS)
_NONZERO = " OR ".join(f"{c} <> 0" for c in COUNTS)
_IDENTITY = (
    "(n.domain_id, n.campaign_id, n.created_at, n.status, n.qualification->>'score', "
    "n.deleted_at IS NULL) IS DISTINCT FROM (o.domain_id, o.campaign_id, o.created_at, "
    "o.status, o.qualification->>'score', o.deleted_at IS NULL)"
)


def _row(alias: str, n: int) -> str:
    """What a delta row carries: the bucket key, status, qualification score, and the sign."""
    return (
        f"{alias}.domain_id, {alias}.campaign_id, {alias}.created_at, {alias}.status, "
        f"{alias}.qualification->>'score' AS q, {n} AS n"
    )


# Per statement, the signed change of each counted lead (live leads only).
_DELTAS = {
    "insert": f"SELECT {_row('n', 1)} FROM new_rows n WHERE n.deleted_at IS NULL",
    "delete": f"SELECT {_row('o', -1)} FROM old_rows o WHERE o.deleted_at IS NULL",
    "update": f"SELECT {_row('n', 1)} FROM new_rows n JOIN old_rows o USING (id) "
    f"WHERE n.deleted_at IS NULL AND {_IDENTITY} "
    f"UNION ALL SELECT {_row('o', -1)} FROM old_rows o JOIN new_rows n USING (id) "
    f"WHERE o.deleted_at IS NULL AND {_IDENTITY}",
}


def _stats_function(event: str) -> str:
    """An AFTER ... FOR EACH STATEMENT function: fold the statement's delta into `lead_stats`,
    every grain at once, buckets in key order. The delta is summed per quarter hour first and
    the coarser grains from those sums, so a 5,000-row page is aggregated once, not thrice. Domains being deleted are skipped (their rows go
    with the domain's ON DELETE CASCADE; inserting would fail the foreign key)."""
    return f"""
CREATE FUNCTION lead_stats_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    WITH d AS ({_DELTAS[event]}),
    quarters AS (
        SELECT d.domain_id, d.campaign_id,
               date_bin(interval '15 minutes', d.created_at, {ORIGIN}) AS bucket,
{_SUMS}
        FROM d
        GROUP BY 1, 2, 3
    ),
    agg AS (
        SELECT q.domain_id, q.campaign_id, grains.grain,
               date_bin(make_interval(mins => grains.grain), q.bucket, {ORIGIN}) AS bucket,
               {", ".join(f"sum(q.{c}) AS {c}" for c in COUNTS)}
        FROM quarters q CROSS JOIN {GRAINS}
        GROUP BY 1, 2, 3, 4
    )
    INSERT INTO lead_stats AS s (domain_id, campaign_id, grain, bucket, {_COLUMNS})
    SELECT agg.domain_id, agg.campaign_id, agg.grain, agg.bucket, {_COLUMNS} FROM agg
    WHERE ({_NONZERO}) AND EXISTS (SELECT 1 FROM domains WHERE domains.id = agg.domain_id)
    ORDER BY {KEY}
    ON CONFLICT ({KEY}) DO UPDATE SET {_ADD};
    RETURN NULL;
END $$
"""


_TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
}

# The finest grain from `leads`, each coarser one from the one below (fewer rows to read).
_COUNT_ROWS = ",\n".join(
    [
        "count(*)",
        *(f"count(*) FILTER (WHERE status = '{s}')" for s in STATUSES),
        *(f"count(*) FILTER (WHERE qualification->>'score' = '{s}')" for s in SCORES),
        "count(*) FILTER (WHERE qualification->>'score' NOT IN ('1', '2', '3', '4', '5'))",
    ]
)
_BACKFILL_QUARTERS = f"""
INSERT INTO lead_stats (domain_id, campaign_id, grain, bucket, {_COLUMNS})
SELECT domain_id, campaign_id, 15,
       date_bin(interval '15 minutes', created_at, {ORIGIN}),
       {_COUNT_ROWS}
FROM leads WHERE deleted_at IS NULL
GROUP BY 1, 2, 3, 4
"""
_ROLL_UP = f"""
INSERT INTO lead_stats (domain_id, campaign_id, grain, bucket, {_COLUMNS})
SELECT domain_id, campaign_id, %(grain)s,
       date_bin(interval '%(grain)s minutes', bucket, {ORIGIN}),
       {", ".join(f"sum({c})" for c in COUNTS)}
FROM lead_stats WHERE grain = %(finer)s
GROUP BY 1, 2, 3, 4
"""


def upgrade() -> None:
    op.create_table(
        "lead_stats",
        sa.Column("domain_id", sa.UUID(), nullable=False),
        sa.Column("campaign_id", sa.UUID(), nullable=True),
        sa.Column("grain", sa.SmallInteger(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        *(
            sa.Column(c, sa.BigInteger(), server_default=sa.text("0"), nullable=False)
            for c in COUNTS
        ),
        sa.CheckConstraint("grain IN (15, 60, 1440)", name=op.f("ck_lead_stats_grain_valid")),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_lead_stats_domain_id_domains"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ux_lead_stats_key",
        "lead_stats",
        ["domain_id", "grain", "bucket", "campaign_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    # Triggers first: CREATE TRIGGER locks `leads` against writes until this migration commits,
    # so the backfill below sees every lead and no write slips between the two.
    for event, transition in _TRANSITIONS.items():
        op.execute(_stats_function(event))
        op.execute(
            f"CREATE TRIGGER trg_leads_stats_{event} AFTER {event.upper()} ON leads "
            f"{transition} FOR EACH STATEMENT EXECUTE FUNCTION lead_stats_on_{event}()"
        )
    op.execute(_BACKFILL_QUARTERS)
    op.execute(_ROLL_UP % {"grain": 60, "finer": 15})
    op.execute(_ROLL_UP % {"grain": 1440, "finer": 60})
    op.execute("ANALYZE lead_stats")


def downgrade() -> None:
    for event in _TRANSITIONS:
        op.execute(f"DROP TRIGGER IF EXISTS trg_leads_stats_{event} ON leads")
        op.execute(f"DROP FUNCTION IF EXISTS lead_stats_on_{event}()")
    op.drop_index("ux_lead_stats_key", table_name="lead_stats")
    op.drop_table("lead_stats")
