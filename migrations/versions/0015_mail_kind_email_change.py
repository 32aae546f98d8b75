"""outgoing_mails: the `email_change` kind (self-service email change)

Revision ID: 0015
Revises: 0009
Create Date: 2026-12-04 21:00:00

Issue 18 (self-service): a new email is confirmed by a token mailed to it, and the old address
is told once the change is made; both mails go through the outbox as kind `email_change`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ck_outgoing_mails_kind_valid"


def _kinds(*kinds: str) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade() -> None:
    op.drop_constraint(op.f(_NAME), "outgoing_mails", type_="check")
    op.create_check_constraint(
        op.f(_NAME),
        "outgoing_mails",
        _kinds("password_reset", "invitation", "notification", "email_change"),
    )


def downgrade() -> None:
    op.execute("DELETE FROM outgoing_mails WHERE kind = 'email_change'")
    op.drop_constraint(op.f(_NAME), "outgoing_mails", type_="check")
    op.create_check_constraint(
        op.f(_NAME), "outgoing_mails", _kinds("password_reset", "invitation", "notification")
    )
