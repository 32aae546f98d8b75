"""domains: `name_claimed_at`, when the current name was founded or renamed to

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 21:10:00

Issue 14 (M2): an unproven claim lapses `DASHIN_UNVERIFIED_DOMAIN_RELEASE_DAYS` after it was
made. The rule read `created_at`, so a domain renamed long after it was founded held its new,
unproven name for no time at all: any manager could take it at once. Existing rows start
their clock at `created_at`, which is what the rule read until now.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "domains",
        sa.Column(
            "name_claimed_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
    )
    op.execute("UPDATE domains SET name_claimed_at = created_at")


def downgrade() -> None:
    op.drop_column("domains", "name_claimed_at")
