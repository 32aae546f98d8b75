"""row-level security: every table with tenant data answers only the transaction's domain (issue 20)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 07:30:00

Python scopes every query by domain; this puts the database behind it. Two roles (cluster-wide,
created here when the migrating user may, see docs/operations.md otherwise):

- `dashin_app` (NOLOGIN, owns nothing): a transaction acting for a domain switches to it with
  `SET LOCAL ROLE` and sets `app.domain_id` (`models.row_security`); the policies below then
  show and accept only that domain's rows, and none at all when no domain is set.
- `dashin_maintenance` (NOLOGIN): its members pass every policy. The migrating owner is made a
  member, so its own connections (authentication before a domain is known, sign-up, the
  scheduler, reaper, retention, backups, metrics) still see every domain even though `FORCE`
  subjects the owner to the policies too.

Child tables without a `domain_id` follow their parent through `EXISTS`, which the parent's own
policy filters; the lead write path (`leads`, `lead_keys`, `lead_sources`) carries `domain_id`
itself, so it pays no join. Adding a tenant table is one line in `TENANT_TABLES` or
`CHILD_TABLES` (tests/models/test_row_level_security.py fails on a table with `domain_id` that
is in neither).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from runtime.errors import ConfigurationError

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "dashin_app"
MAINTENANCE_ROLE = "dashin_maintenance"

#: tables whose rows each belong to one domain (`domain_id`)
TENANT_TABLES = (
    "api_keys",
    "audit_log",
    "campaign_metrics",
    "campaigns",
    "clients",
    "credit_ledger",
    "data_sources",
    "domain_event_counters",
    "domain_events",
    "erasures",
    "idempotency_keys",
    "invitations",
    "jobs",
    "lead_keys",
    "lead_sources",
    "lead_stats",
    "leads",
    "link_clicks",
    "links",
    "memberships",
    "notifications",
    "outgoing_mails",
    "schedules",
    "suppressions",
    "uploads",
    "webhook_deliveries",
    "webhook_messages",
    "webhooks",
)

#: child table → (its column, parent table): a row is visible when its parent is
CHILD_TABLES = {
    "job_logs": ("job_id", "jobs"),
    "job_record_errors": ("job_id", "jobs"),
    "upload_chunks": ("upload_id", "uploads"),
}

# NULLIF: a `SET LOCAL` custom setting reads '' (not NULL) after its transaction ends
_DOMAIN = "NULLIF(current_setting('app.domain_id', true), '')::uuid"


def _create_roles() -> None:
    bind = op.get_bind()
    missing = [
        role
        for role in (APP_ROLE, MAINTENANCE_ROLE)
        if bind.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
        is None
    ]
    if not missing:
        return
    may = bind.execute(
        text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    ).scalar()
    if not may:
        raise _ask_an_administrator(missing, [])
    for role in missing:
        # another database of this cluster may be migrating at the same moment
        op.execute(
            f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )


def _join_roles() -> None:
    """The owner may `SET ROLE dashin_app` and passes the maintenance policy (a superuser
    already does both)."""
    bind = op.get_bind()
    refused = []
    for role in (APP_ROLE, MAINTENANCE_ROLE):
        member = bind.execute(
            text("SELECT pg_has_role(current_user, :r, 'MEMBER')"), {"r": role}
        ).scalar()
        if member:
            continue
        try:
            with bind.begin_nested():
                bind.execute(text(f"GRANT {role} TO current_user"))
        except ProgrammingError as exc:  # no CREATEROLE, nor ADMIN OPTION on the role
            if getattr(exc.orig, "sqlstate", None) != "42501":  # insufficient_privilege
                raise
            refused.append(role)
    if refused:
        raise _ask_an_administrator([], refused)


def _ask_an_administrator(missing: Sequence[str], refused: Sequence[str]) -> ConfigurationError:
    """What a managed server's administrator runs once before `dashin migrate` can go on: the
    migrating user may neither create the roles nor grant them (docs/operations.md)."""
    user = op.get_bind().execute(text("SELECT current_user")).scalar()
    if missing:
        problem = f"roles {', '.join(missing)} are missing and {user} may not create them"
    else:
        problem = (
            f"{user} is not a member of {', '.join(refused)} and may not grant itself membership"
        )
    steps = [f"CREATE ROLE {role} NOLOGIN;" for role in missing]
    steps.append(f'GRANT {APP_ROLE}, {MAINTENANCE_ROLE} TO "{user}";')
    return ConfigurationError(
        f"{problem}: have an administrator run {' '.join(steps)} then run `dashin migrate` "
        "again (docs/operations.md, row-level security)"
    )


def upgrade() -> None:
    _create_roles()
    _join_roles()
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    # tables later migrations create get the same grants
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}"
    )
    policies = {table: f"domain_id = {_DOMAIN}" for table in TENANT_TABLES}
    for table, (column, parent) in CHILD_TABLES.items():
        policies[table] = f"EXISTS (SELECT 1 FROM {parent} p WHERE p.id = {table}.{column})"
    for table, condition in policies.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY domain_isolation ON {table} USING ({condition})")
        op.execute(
            f"CREATE POLICY maintenance ON {table} TO {MAINTENANCE_ROLE} USING (true) WITH CHECK (true)"
        )


def downgrade() -> None:
    for table in (*TENANT_TABLES, *CHILD_TABLES):
        op.execute(f"DROP POLICY IF EXISTS maintenance ON {table}")
        op.execute(f"DROP POLICY IF EXISTS domain_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {APP_ROLE}"
    )
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}"
    )
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
    # the roles stay: they are the cluster's, and other databases may use them
