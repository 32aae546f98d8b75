"""domains: ownership proof (`verified_at`, `verification_token`)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 17:40:00

Issue 14 (M2): anyone could found `bigcorp.com` first. A domain founded or renamed through the
API is unverified until its manager publishes `_dashin-verify.<domain> TXT
"dashin-verify=<token>"`; unverified domains may not use paid providers. Domains that exist
before this revision are kept as verified (they were accepted under the old rules).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("domains", sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("domains", sa.Column("verification_token", sa.String(64), nullable=True))
    op.execute("UPDATE domains SET verified_at = created_at")


def downgrade() -> None:
    op.drop_column("domains", "verification_token")
    op.drop_column("domains", "verified_at")
