"""row-level security for viewers limited to clients: the role-dependent policy (issue 20)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 17:00:00

A viewer can be limited to some of the domain's clients (issue 18): they read only those
clients, their campaigns, and the leads, links, clicks and statistics of those campaigns. Python
scopes those reads (`LeadScope.client_ids`, `campaign_ids_of`); these policies stand behind it.
A transaction acting for such a viewer sets `app.client_ids` (`models.row_security`); for
everyone else it is unset and the policies let every row of the domain through.

They are `RESTRICTIVE` (they narrow the domain policy, never widen it), `FOR SELECT` (a limited
viewer writes none of these tables) and `TO dashin_app` (the owner and the maintenance paths
are never limited). The setting is read once per statement (a sub-select PostgreSQL plans as an
init plan), so an unlimited request pays one parameter check per row.

Not here: a member's "own leads" (`LeadScope.restricted`). A member imports leads, and the sink
must match a new record against every lead of the domain, the ones the member does not see
included; a policy would hide the match and make the import write a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "dashin_app"
POLICY = "client_limit"

# NULL: not limited; '{}': limited to no client (sees nothing)
_CLIENTS = "(SELECT NULLIF(current_setting('app.client_ids', true), '')::uuid[])"
# the cast makes `ANY` read an array, not the rows of a sub-select
_ANY_CLIENT = f"ANY ({_CLIENTS}::uuid[])"
_CAMPAIGNS = f"(SELECT c.id FROM campaigns c WHERE c.client_id = {_ANY_CLIENT})"

#: table → the condition a limited viewer's row must meet
LIMITED = {
    "clients": f"id = {_ANY_CLIENT}",
    "campaigns": f"client_id = {_ANY_CLIENT}",
    "leads": f"campaign_id IN {_CAMPAIGNS}",
    "links": f"campaign_id IN {_CAMPAIGNS}",
    "link_clicks": f"link_id IN (SELECT l.id FROM links l WHERE l.campaign_id IN {_CAMPAIGNS})",
    "lead_stats": f"campaign_id IN {_CAMPAIGNS}",
    "campaign_metrics": f"campaign_id IN {_CAMPAIGNS}",
}


def upgrade() -> None:
    for table, condition in LIMITED.items():
        op.execute(
            f"CREATE POLICY {POLICY} ON {table} AS RESTRICTIVE FOR SELECT TO {APP_ROLE} "
            f"USING ({_CLIENTS} IS NULL OR {condition})"
        )


def downgrade() -> None:
    for table in LIMITED:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
