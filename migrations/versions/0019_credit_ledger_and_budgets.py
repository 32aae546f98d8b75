"""credit ledger per data source, job and day; monthly and per-job credit budgets on sources

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 21:25:00

Issue 19. A job over its budget pauses with `pause_reason = 'budget_exhausted'`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REASONS = "pause_reason IS NULL OR pause_reason IN ('user', 'rate_limited', 'shutdown'{})"


def upgrade() -> None:
    op.create_table(
        "credit_ledger",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("domain_id", sa.UUID(), nullable=False),
        sa.Column("data_source_id", sa.UUID(), nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_source_id"],
            ["data_sources.id"],
            name=op.f("fk_credit_ledger_data_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_credit_ledger_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_credit_ledger_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_ledger")),
        sa.UniqueConstraint(
            "data_source_id",
            "job_id",
            "day",
            name=op.f("uq_credit_ledger_data_source_id_job_id_day"),
        ),
    )
    op.create_index(op.f("ix_credit_ledger_domain_id"), "credit_ledger", ["domain_id"])
    op.add_column("data_sources", sa.Column("monthly_credit_budget", sa.Integer(), nullable=True))
    op.add_column("data_sources", sa.Column("job_credit_budget", sa.Integer(), nullable=True))
    op.drop_constraint(op.f("ck_jobs_pause_reason_valid"), "jobs", type_="check")
    op.create_check_constraint(
        op.f("ck_jobs_pause_reason_valid"), "jobs", _REASONS.format(", 'budget_exhausted'")
    )


def downgrade() -> None:
    op.execute("UPDATE jobs SET pause_reason = 'user' WHERE pause_reason = 'budget_exhausted'")
    op.drop_constraint(op.f("ck_jobs_pause_reason_valid"), "jobs", type_="check")
    op.create_check_constraint(op.f("ck_jobs_pause_reason_valid"), "jobs", _REASONS.format(""))
    op.drop_column("data_sources", "job_credit_budget")
    op.drop_column("data_sources", "monthly_credit_budget")
    op.drop_index(op.f("ix_credit_ledger_domain_id"), table_name="credit_ledger")
    op.drop_table("credit_ledger")
