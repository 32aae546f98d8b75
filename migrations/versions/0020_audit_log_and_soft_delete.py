"""audit log; soft delete for data sources and schedules

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 21:30:00

Issue 18, item 6. `audit_log` holds who changed which entity, how, when and from which request,
with field NAMES only (never values). Its domain and actor columns have no foreign keys: the
trail of a deleted domain, user or key is what an audit is for. `deleted_at` on `data_sources`
and `schedules` makes their DELETE reversible (`POST .../restore`), like leads and campaigns.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("domain_id", sa.UUID(), nullable=True),
        sa.Column("actor_user_id", sa.UUID(), nullable=True),
        sa.Column("actor_api_key_id", sa.UUID(), nullable=True),
        sa.Column("actor_role", sa.String(length=16), nullable=True),
        sa.Column("actor_is_admin", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("entity_type", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column(
            "fields",
            postgresql.ARRAY(sa.String(length=100)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_domain_id_created_at", "audit_log", ["domain_id", "created_at"], unique=False
    )
    for table in ("data_sources", "schedules"):
        op.add_column(table, sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ("schedules", "data_sources"):
        op.drop_column(table, "deleted_at")
    op.drop_index("ix_audit_log_domain_id_created_at", table_name="audit_log")
    op.drop_table("audit_log")
