"""api keys: a `service` flag; other keys are revoked when their owner's password is reset

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 17:30:00

Issue 14: API keys survived their owner's password reset, so a stolen account kept its keys
working after the owner took it back. Keys are now revoked on a reset unless marked `service`
(an integration that must keep running); existing keys are not service keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("service", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("api_keys", "service")
