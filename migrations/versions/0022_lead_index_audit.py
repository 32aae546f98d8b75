"""leads: the priority index no query uses goes; a smaller search pending list (issue 16)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 21:50:00

`bench/index_audit.py` on 1,000,000 leads (docs/indexes.md): no `GET /leads?priority=` plan
uses `ix_leads_domain_priority` — with three values, walking the created-at or score index
until a page is full is always cheaper — so every lead wrote it for nothing.

The trigram index's pending list ceiling goes from 256 MB to 64 MB: the worker's merger keeps
it far below either, but where no merger runs (a bulk load in SQL) the planner prices a long
pending list so high that searches fell back to a sequential scan (measured 248 ms instead of
4 ms after 300,000 rows); 64 MB bounds that, and still measured ~20% faster than the 4 MB
default merged inside the page (`bench/write_costs.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_leads_domain_priority", table_name="leads")
    op.execute("ALTER INDEX ix_leads_search_trgm SET (gin_pending_list_limit = 65536)")


def downgrade() -> None:
    op.execute("ALTER INDEX ix_leads_search_trgm SET (gin_pending_list_limit = 262144)")
    op.create_index("ix_leads_domain_priority", "leads", ["domain_id", "priority"])
