"""outgoing_mails: the `email_change` kind; `backups`, the record of the scheduler's backups

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-04 21:00:00

Issue 18 (self-service): a new email is confirmed by a token mailed to it, and the old address
is told once the change is made; both mails go through the outbox as kind `email_change`.
Issue 18 (backups by the product): the scheduler's leader records each backup attempt, so
`/metrics` on any API replica can show the age of the last verified one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ck_outgoing_mails_kind_valid"


def _kinds(*kinds: str) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'verified', 'failed')", name=op.f("ck_backups_status_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backups")),
    )
    op.drop_constraint(op.f(_NAME), "outgoing_mails", type_="check")
    op.create_check_constraint(
        op.f(_NAME),
        "outgoing_mails",
        _kinds("password_reset", "invitation", "notification", "email_change"),
    )


def downgrade() -> None:
    op.drop_table("backups")
    op.execute("DELETE FROM outgoing_mails WHERE kind = 'email_change'")
    op.drop_constraint(op.f(_NAME), "outgoing_mails", type_="check")
    op.create_check_constraint(
        op.f(_NAME), "outgoing_mails", _kinds("password_reset", "invitation", "notification")
    )
