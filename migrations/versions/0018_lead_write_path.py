"""lead write path: fewer indexes and foreign keys, search merged after commit, score given (issue 16)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 21:00:00

`docs/indexes.md` names the query behind every index left on `leads`, `lead_keys` and
`lead_sources`, with its plan (`bench/index_audit.py`). What goes here:

* `ix_leads_domain_id`: every domain-scoped read uses an index that starts with `domain_id`
  (`ix_leads_domain_created` and friends), and so does the domain's `ON DELETE CASCADE`.
* `ix_leads_tags` becomes partial (`WHERE tags <> '{}'`): imported leads have no tags, and
  each still wrote an "empty array" entry; the tag filter states the predicate so it applies.
* `lead_keys.id`: nothing reads a key by id; `(domain_id, key)` becomes the primary key,
  replacing the unique constraint, and each attached key writes one index less.
* the foreign keys from `lead_keys.domain_id` and `lead_sources.domain_id` to `domains`: both
  rows hang off a lead (`lead_id` → `leads`, `ON DELETE CASCADE`) whose own `domain_id` is
  checked, and the sink writes the lead's domain; the check cost one `domains` probe and row
  lock per key and per provenance row. The `lead_id`, `job_id` and `data_source_id` keys stay:
  other writers (erasure, purge, deleting a job or a source) race the sink on those rows.

Search off the page transaction: the trigram index keeps `fastupdate` with a pending list of
256 MB, so a page appends its entries to the pending list (searched as it is, so a lead is
findable at commit) instead of merging them into the tree; `leads_search_merge()` (SECURITY
DEFINER, so any role of the app may call it) merges the list, run by the worker's search merger
after commits (`workers.search_merge`). Measured with `bench/write_costs.py`: COPY into `leads`
runs ~2x faster than with the default 4 MB list merged inside the page.

Score given by the writer: the score trigger fires on INSERT only when the row comes without
a score (`score` has no default any more; NOT NULL is checked after BEFORE triggers), so the
sink, which computes the score of its new leads from the same formula (`models.scoring`),
skips one PL/pgSQL call per row; every other writer, and every UPDATE, is scored as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TAGGED = "tags <> '{}'::text[]"
#: the trigram index's pending list, in kB: a ceiling the merger normally keeps far below
SEARCH_PENDING_KB = 262144
SEARCH_MERGE = """
CREATE FUNCTION leads_search_merge() RETURNS bigint LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
    SELECT gin_clean_pending_list('ix_leads_search_trgm'::regclass)
$$
"""


def upgrade() -> None:
    op.drop_index("ix_leads_domain_id", table_name="leads")
    op.drop_index("ix_leads_tags", table_name="leads")
    op.execute(f"CREATE INDEX ix_leads_tags ON leads USING gin (tags) WHERE {TAGGED}")
    op.drop_constraint("fk_lead_keys_domain_id_domains", "lead_keys", type_="foreignkey")
    op.drop_constraint("pk_lead_keys", "lead_keys", type_="primary")
    op.drop_column("lead_keys", "id")
    op.create_primary_key("pk_lead_keys", "lead_keys", ["domain_id", "key"])
    op.drop_constraint("uq_lead_keys_domain_id_key", "lead_keys", type_="unique")
    op.drop_constraint("fk_lead_sources_domain_id_domains", "lead_sources", type_="foreignkey")

    op.execute(
        "ALTER INDEX ix_leads_search_trgm "
        f"SET (fastupdate = on, gin_pending_list_limit = {SEARCH_PENDING_KB})"
    )
    op.execute(SEARCH_MERGE)

    op.execute("ALTER TABLE leads ALTER COLUMN score DROP DEFAULT")
    op.execute("DROP TRIGGER trg_leads_score ON leads")
    op.execute(
        "CREATE TRIGGER trg_leads_score_insert BEFORE INSERT ON leads FOR EACH ROW "
        "WHEN (NEW.score IS NULL) EXECUTE FUNCTION leads_set_score()"
    )
    op.execute(
        "CREATE TRIGGER trg_leads_score_update BEFORE UPDATE ON leads FOR EACH ROW "
        "EXECUTE FUNCTION leads_set_score()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_leads_score_update ON leads")
    op.execute("DROP TRIGGER trg_leads_score_insert ON leads")
    op.execute(
        "CREATE TRIGGER trg_leads_score BEFORE INSERT OR UPDATE ON leads "
        "FOR EACH ROW EXECUTE FUNCTION leads_set_score()"
    )
    op.execute("ALTER TABLE leads ALTER COLUMN score SET DEFAULT 0")
    op.execute("DROP FUNCTION leads_search_merge()")
    op.execute("ALTER INDEX ix_leads_search_trgm RESET (fastupdate, gin_pending_list_limit)")
    op.create_foreign_key(
        "fk_lead_sources_domain_id_domains",
        "lead_sources",
        "domains",
        ["domain_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.drop_constraint("pk_lead_keys", "lead_keys", type_="primary")
    op.create_unique_constraint("uq_lead_keys_domain_id_key", "lead_keys", ["domain_id", "key"])
    op.add_column("lead_keys", sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False))
    op.create_primary_key("pk_lead_keys", "lead_keys", ["id"])
    op.create_foreign_key(
        "fk_lead_keys_domain_id_domains",
        "lead_keys",
        "domains",
        ["domain_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.drop_index("ix_leads_tags", table_name="leads")
    op.create_index("ix_leads_tags", "leads", ["tags"], postgresql_using="gin")
    op.create_index("ix_leads_domain_id", "leads", ["domain_id"])
