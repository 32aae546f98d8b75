"""clients: the agency's clients, a campaign's client, viewers limited to clients

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 07:40:00

Issue 18, item 1. `clients` belong to a domain (one name per domain, case-insensitively);
`campaigns.client_id` names at most one. The API refuses to delete a client that still has
live campaigns (409), so the foreign key's SET NULL only ever clears deleted campaigns'.
`memberships.client_ids` limits a viewer to some clients (NULL: not limited); a CHECK keeps it
to viewers. An array cannot carry a foreign key: deleting a client removes its id there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("domain_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_clients_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    op.create_index(op.f("ix_clients_domain_id"), "clients", ["domain_id"], unique=False)
    op.create_index(
        "uq_clients_domain_id_name_lower",
        "clients",
        ["domain_id", sa.text("lower(name)")],
        unique=True,
    )
    op.execute(
        "CREATE TRIGGER trg_clients_updated_at BEFORE UPDATE ON clients "
        "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
    )
    op.add_column("campaigns", sa.Column("client_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_campaigns_client_id_clients"),
        "campaigns",
        "clients",
        ["client_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(op.f("ix_campaigns_client_id"), "campaigns", ["client_id"], unique=False)
    op.add_column(
        "memberships", sa.Column("client_ids", postgresql.ARRAY(sa.UUID()), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_memberships_client_ids_viewer_only"),
        "memberships",
        "client_ids IS NULL OR role = 'viewer'",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_memberships_client_ids_viewer_only"), "memberships", type_="check")
    op.drop_column("memberships", "client_ids")
    op.drop_index(op.f("ix_campaigns_client_id"), table_name="campaigns")
    op.drop_constraint(op.f("fk_campaigns_client_id_clients"), "campaigns", type_="foreignkey")
    op.drop_column("campaigns", "client_id")
    op.execute("DROP TRIGGER IF EXISTS trg_clients_updated_at ON clients")
    op.drop_index("uq_clients_domain_id_name_lower", table_name="clients")
    op.drop_index(op.f("ix_clients_domain_id"), table_name="clients")
    op.drop_table("clients")
