"""lead write path: indexes and foreign keys that no query needs go (issue 16)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:00:00

`docs/indexes.md` names the query behind every index left on `leads`, `lead_keys` and
`lead_sources`, with its plan (`bench/index_audit.py`). What goes here:

* `ix_leads_domain_id`: every domain-scoped read uses an index that starts with `domain_id`
  (`ix_leads_domain_created` and friends), and so does the domain's `ON DELETE CASCADE`.
* `lead_keys.id`: nothing reads a key by id; `(domain_id, key)` becomes the primary key,
  replacing the unique constraint, and each attached key writes one index less.
* the foreign keys from `lead_keys.domain_id` and `lead_sources.domain_id` to `domains`: both
  rows hang off a lead (`lead_id` → `leads`, `ON DELETE CASCADE`) whose own `domain_id` is
  checked, and the sink writes the lead's domain; the check cost one `domains` probe and row
  lock per key and per provenance row. The `lead_id`, `job_id` and `data_source_id` keys stay:
  other writers (erasure, purge, deleting a job or a source) race the sink on those rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_leads_domain_id", table_name="leads")
    op.drop_constraint("fk_lead_keys_domain_id_domains", "lead_keys", type_="foreignkey")
    op.drop_constraint("pk_lead_keys", "lead_keys", type_="primary")
    op.drop_column("lead_keys", "id")
    op.create_primary_key("pk_lead_keys", "lead_keys", ["domain_id", "key"])
    op.drop_constraint("uq_lead_keys_domain_id_key", "lead_keys", type_="unique")
    op.drop_constraint("fk_lead_sources_domain_id_domains", "lead_sources", type_="foreignkey")


def downgrade() -> None:
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
    op.create_index("ix_leads_domain_id", "leads", ["domain_id"])
