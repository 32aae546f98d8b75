"""suppressions, erasure audit, per-domain data policy (suppression action, retention days)

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-04 20:50:00

Issue 19. `suppressions` holds SHA-256 hashes of normalised identity keys, never the keys;
`erasures` is the audit trail of erasures (who, when, how many rows; no personal data). The
retention columns are days (NULL: keep forever) read by the purge.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RETENTION = (
    ("retain_job_logs_days", 90),
    ("retain_row_errors_days", 90),
    ("retain_raw_payloads_days", 90),
    ("retain_uploads_days", 30),
    ("retain_finished_jobs_days", 365),
)


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("domain_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        _created_at(),
        sa.CheckConstraint(
            "kind IN ('email', 'email_domain', 'linkedin_url', 'external_id')",
            name=op.f("ck_suppressions_kind_valid"),
        ),
        sa.CheckConstraint(
            "origin IN ('api', 'import', 'erasure')", name=op.f("ck_suppressions_origin_valid")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_suppressions_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_suppressions_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint(
            "domain_id", "key_hash", name=op.f("uq_suppressions_domain_id_key_hash")
        ),
    )
    op.create_index(op.f("ix_suppressions_domain_id"), "suppressions", ["domain_id"])
    op.create_table(
        "erasures",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("domain_id", sa.UUID(), nullable=False),
        sa.Column("erased_by", sa.UUID(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("leads", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column(
            "tables",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        _created_at(),
        sa.CheckConstraint(
            "trigger IN ('request', 'suppression')", name=op.f("ck_erasures_trigger_valid")
        ),
        sa.ForeignKeyConstraint(
            ["erased_by"],
            ["users.id"],
            name=op.f("fk_erasures_erased_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_erasures_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index(op.f("ix_erasures_domain_id"), "erasures", ["domain_id"])
    op.add_column(
        "domains",
        sa.Column("suppression_action", sa.String(8), server_default="flag", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_domains_suppression_action_valid"),
        "domains",
        "suppression_action IN ('flag', 'erase')",
    )
    for column, days in _RETENTION:
        op.add_column(
            "domains",
            sa.Column(column, sa.Integer(), server_default=sa.text(str(days)), nullable=True),
        )


def downgrade() -> None:
    for column, _ in reversed(_RETENTION):
        op.drop_column("domains", column)
    op.drop_constraint(op.f("ck_domains_suppression_action_valid"), "domains", type_="check")
    op.drop_column("domains", "suppression_action")
    op.drop_index(op.f("ix_erasures_domain_id"), table_name="erasures")
    op.drop_table("erasures")
    op.drop_index(op.f("ix_suppressions_domain_id"), table_name="suppressions")
    op.drop_table("suppressions")
