"""domain events: the log `/events` and the WebSocket replay after `Last-Event-ID`

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 07:40:00

Issue 18, item 4: lead, campaign and data source changes stream to the domain's members and
resume without a gap. One row per change (a worker's page is one row), numbered per domain by a
counter row whose lock orders the writers (`models.domain_events`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "domain_event_counters",
        sa.Column("domain_id", sa.Uuid(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["domain_id"], ["domains.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("domain_id"),
    )
    op.create_table(
        "domain_events",
        sa.Column("domain_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(["domain_id"], ["domains.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("domain_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("domain_events")
    op.drop_table("domain_event_counters")
