"""lead desk: keyset and trigram indexes, the lead score trigger, maintained campaign metrics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:00:00

The SQL below is frozen on purpose (a migration is history): `models.scoring` holds the same
formula in Python, and tests/models/test_scoring.py checks that both agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("new", "contacted", "responded", "qualified", "rejected", "converted")

SCORE_FUNCTION = """
CREATE OR REPLACE FUNCTION lead_score(
    status text, priority text, qualification_score integer, filled_fields integer,
    created_at timestamptz, now timestamptz
) RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(0, least(100,
        CASE status WHEN 'new' THEN 5 WHEN 'contacted' THEN 10 WHEN 'responded' THEN 20 WHEN 'qualified' THEN 30 WHEN 'converted' THEN 35 WHEN 'rejected' THEN 0 ELSE 0 END
        + 5 * least(greatest(coalesce(qualification_score, 0), 0), 5)
        + CASE priority WHEN 'low' THEN 0 WHEN 'medium' THEN 5 WHEN 'high' THEN 10 ELSE 0 END
        + 2 * least(greatest(filled_fields, 0), 10)
        + CASE WHEN now - created_at <= interval '7 days' THEN 10 WHEN now - created_at <= interval '30 days' THEN 6 WHEN now - created_at <= interval '90 days' THEN 3 ELSE 0 END
    ))::smallint
$$
"""

SCORE_TRIGGER = """
CREATE OR REPLACE FUNCTION leads_set_score() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.score := lead_score(NEW.status, NEW.priority, (NEW.qualification->>'score')::integer, (NEW.first_name IS NOT NULL)::int + (NEW.last_name IS NOT NULL)::int + (NEW.email IS NOT NULL)::int + (NEW.phone IS NOT NULL)::int + (NEW.title IS NOT NULL)::int + (NEW.company_name IS NOT NULL)::int + (NEW.company_domain IS NOT NULL)::int + (NEW.company_industry IS NOT NULL)::int + (NEW.linkedin_url IS NOT NULL)::int + (NEW.country IS NOT NULL)::int, NEW.created_at, now());
    RETURN NEW;
END $$;
CREATE TRIGGER trg_leads_score BEFORE INSERT OR UPDATE ON leads
    FOR EACH ROW EXECUTE FUNCTION leads_set_score();
"""

SEARCH_INDEX = (
    "CREATE INDEX ix_leads_search_trgm ON leads USING gin (lower((((((((coalesce(first_name, '') "
    "|| ' ') || coalesce(last_name, '')) || ' ') || coalesce(email, '')) || ' ') "
    "|| coalesce(company_name, '')) || ' ') || coalesce(title, '')) gin_trgm_ops)"
)

_COUNTS = ", ".join(STATUSES)
_SUMS = ",\n".join(
    f"            coalesce(sum(d.n) FILTER (WHERE d.status = '{s}'), 0) AS {s}" for s in STATUSES
)
_ADD = ", ".join(f"{c} = m.{c} + EXCLUDED.{c}" for c in ("leads", *STATUSES))
_NONZERO = " OR ".join(f"{c} <> 0" for c in ("leads", *STATUSES))
_CHANGED = (
    "(n.status, n.campaign_id, n.deleted_at IS NULL) "
    "IS DISTINCT FROM (o.status, o.campaign_id, o.deleted_at IS NULL)"
)
# Per statement, the signed change of each campaign's counts (live leads only).
_DELTAS = {
    "insert": "SELECT campaign_id, status, 1 AS n FROM new_rows "
    "WHERE campaign_id IS NOT NULL AND deleted_at IS NULL",
    "delete": "SELECT campaign_id, status, -1 AS n FROM old_rows "
    "WHERE campaign_id IS NOT NULL AND deleted_at IS NULL",
    "update": f"SELECT n.campaign_id, n.status, 1 AS n FROM new_rows n JOIN old_rows o USING (id) "
    f"WHERE n.campaign_id IS NOT NULL AND n.deleted_at IS NULL AND {_CHANGED} "
    f"UNION ALL SELECT o.campaign_id, o.status, -1 FROM old_rows o JOIN new_rows n USING (id) "
    f"WHERE o.campaign_id IS NOT NULL AND o.deleted_at IS NULL AND {_CHANGED}",
}


def _metrics_function(event: str) -> str:
    """An AFTER ... FOR EACH STATEMENT function: fold the statement's delta into the counts
    (campaigns in id order, so concurrent writers lock metric rows in one order) and NOTIFY."""
    return f"""
CREATE FUNCTION campaign_metrics_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    changed uuid;
BEGIN
    FOR changed IN
        WITH d AS ({_DELTAS[event]}),
        agg AS (
            SELECT d.campaign_id, c.domain_id, sum(d.n) AS leads,
{_SUMS}
            FROM d JOIN campaigns c ON c.id = d.campaign_id
            GROUP BY d.campaign_id, c.domain_id
        )
        INSERT INTO campaign_metrics AS m (campaign_id, domain_id, leads, {_COUNTS})
        SELECT campaign_id, domain_id, leads, {_COUNTS} FROM agg
        WHERE {_NONZERO}
        ORDER BY campaign_id
        ON CONFLICT (campaign_id) DO UPDATE SET {_ADD}, updated_at = now()
        RETURNING m.campaign_id
    LOOP
        PERFORM pg_notify('campaign_metrics', changed::text);
    END LOOP;
    RETURN NULL;
END $$
"""


_TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
}

_BACKFILL_METRICS = f"""
INSERT INTO campaign_metrics (campaign_id, domain_id, leads, {_COUNTS})
SELECT l.campaign_id, c.domain_id, count(*),
       {", ".join(f"count(*) FILTER (WHERE l.status = '{s}')" for s in STATUSES)}
FROM leads l JOIN campaigns c ON c.id = l.campaign_id
WHERE l.deleted_at IS NULL
GROUP BY l.campaign_id, c.domain_id
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.drop_index("ix_leads_domain_score", table_name="leads")
    op.drop_index("ix_leads_campaign", table_name="leads")
    op.create_index("ix_leads_domain_score_id", "leads", ["domain_id", "score", "id"])
    op.create_index("ix_leads_domain_updated", "leads", ["domain_id", "updated_at", "id"])
    op.create_index("ix_leads_campaign_created", "leads", ["campaign_id", "created_at"])
    op.execute(SEARCH_INDEX)

    op.create_table(
        "campaign_metrics",
        sa.Column("campaign_id", sa.UUID(), nullable=False),
        sa.Column("domain_id", sa.UUID(), nullable=False),
        *(
            sa.Column(c, sa.BigInteger(), server_default=sa.text("0"), nullable=False)
            for c in ("leads", *STATUSES)
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_metrics_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_campaign_metrics_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_metrics")),
    )
    op.create_index(
        op.f("ix_campaign_metrics_domain_id"), "campaign_metrics", ["domain_id"], unique=False
    )

    op.execute(SCORE_FUNCTION)
    op.execute(SCORE_TRIGGER)
    op.execute("UPDATE leads SET score = 0")  # the trigger computes every existing score

    op.execute(_BACKFILL_METRICS)
    for event, transition in _TRANSITIONS.items():
        op.execute(_metrics_function(event))
        op.execute(
            f"CREATE TRIGGER trg_leads_metrics_{event} AFTER {event.upper()} ON leads "
            f"{transition} FOR EACH STATEMENT EXECUTE FUNCTION campaign_metrics_on_{event}()"
        )


def downgrade() -> None:
    for event in _TRANSITIONS:
        op.execute(f"DROP TRIGGER IF EXISTS trg_leads_metrics_{event} ON leads")
        op.execute(f"DROP FUNCTION IF EXISTS campaign_metrics_on_{event}()")
    op.execute("DROP TRIGGER IF EXISTS trg_leads_score ON leads")
    op.execute("DROP FUNCTION IF EXISTS leads_set_score()")
    op.execute(
        "DROP FUNCTION IF EXISTS lead_score(text, text, integer, integer, timestamptz, timestamptz)"
    )
    op.drop_index(op.f("ix_campaign_metrics_domain_id"), table_name="campaign_metrics")
    op.drop_table("campaign_metrics")
    op.execute("DROP INDEX IF EXISTS ix_leads_search_trgm")
    op.drop_index("ix_leads_campaign_created", table_name="leads")
    op.drop_index("ix_leads_domain_updated", table_name="leads")
    op.drop_index("ix_leads_domain_score_id", table_name="leads")
    op.create_index("ix_leads_campaign", "leads", ["campaign_id"])
    op.create_index("ix_leads_domain_score", "leads", ["domain_id", "score"])
