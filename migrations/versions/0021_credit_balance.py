"""data sources: the provider's last known credit balance (usage headers)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 21:35:00

Issue 19: ZoomInfo answers `X-Usage-Record-Limit-Remaining` on every call; the connector reports
it and the data source keeps the last value and when it was seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("data_sources", sa.Column("credit_balance", sa.BigInteger(), nullable=True))
    op.add_column(
        "data_sources", sa.Column("credit_balance_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("data_sources", "credit_balance_at")
    op.drop_column("data_sources", "credit_balance")
