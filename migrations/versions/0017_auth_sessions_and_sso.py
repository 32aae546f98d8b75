"""API sign-in sessions with rotating refresh tokens; a domain's single sign-on join role

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-04 21:10:00

Issue 18, item 2. See `models.auth_sessions`: refresh tokens are stored as SHA-256 hashes;
access tokens name their session, so revoking the row ends them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=True),
        sa.Column("user_agent", sa.String(length=80), nullable=True),
        sa.Column("ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("password_version", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "method IN ('password', 'oidc')", name=op.f("ck_auth_sessions_method_valid")
        ),
        sa.CheckConstraint(
            "revoked_reason IN ('logout', 'revoked', 'reuse', 'password')",
            name=op.f("ck_auth_sessions_revoked_reason_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_auth_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    op.create_index(op.f("ix_auth_sessions_user_id"), "auth_sessions", ["user_id"], unique=False)
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth_sessions.id"],
            name=op.f("fk_refresh_tokens_session_id_auth_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_refresh_tokens_session_id"), "refresh_tokens", ["session_id"], unique=False
    )
    op.add_column("domains", sa.Column("sso_join_role", sa.String(length=16), nullable=True))
    op.create_check_constraint(
        op.f("ck_domains_sso_join_role_valid"),
        "domains",
        "sso_join_role IN ('manager', 'member', 'viewer')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_domains_sso_join_role_valid"), "domains", type_="check")
    op.drop_column("domains", "sso_join_role")
    op.drop_table("refresh_tokens")
    op.drop_table("auth_sessions")
