"""lead search and the tag filter keep their indexes under row-level security (issue 20)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 13:00:00

Under the policies of 0025, PostgreSQL checks a policy before any condition of the query that is
not `LEAKPROOF`, and such a condition can then no longer drive an index scan. `LIKE` on the
search text (`?q=`, `ix_leads_search_trgm`) and `tags @>` (`?tag=`, `ix_leads_tags`) are not
leakproof: as `dashin_app`, a selective search on 200,000 leads of a domain took 165 ms (a walk
of the domain's newest leads) where the owner's bitmap scan takes 1 ms.

These two functions find the matching ids with the index. They run as their owner
(`SECURITY DEFINER`, the migrating user, which the maintenance policy lets through) and take the
domain from the transaction's `app.domain_id` only, never from an argument: with no domain set
they return nothing, so they fail closed like the policies. They return at most `cap` ids;
`models.leads_repo.narrow` uses them when the search is selective and falls back to the plain
condition when it is broad (then the newest leads match soon, and no index is needed).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DOMAIN = "NULLIF(current_setting('app.domain_id', true), '')::uuid"
# the very expression `ix_leads_search_trgm` indexes (models.leads.lead_search_text)
_SEARCH_TEXT = (
    "lower((((((((coalesce(first_name, '') || ' ') || coalesce(last_name, '')) || ' ') "
    "|| coalesce(email, '')) || ' ') || coalesce(company_name, '')) || ' ') "
    "|| coalesce(title, ''))"
)

# Dynamic SQL (`EXECUTE … USING`) is planned for each call with its values: a pattern of two
# letters gets a sequential scan that stops at the cap, a name gets the trigram index. A plain
# SQL function would plan once for any pattern and scan the whole index for `%u1%` (173 ms).
FUNCTIONS = {
    "lead_search_hits(pattern text, cap integer)": f"""
        SELECT id FROM public.leads
        WHERE domain_id = {_DOMAIN} AND {_SEARCH_TEXT} LIKE $1 ESCAPE '\\'
        LIMIT $2""",
    "lead_tag_hits(tag text, cap integer)": f"""
        SELECT id FROM public.leads
        WHERE domain_id = {_DOMAIN} AND tags @> ARRAY[$1]::text[] AND tags <> '{{}}'::text[]
        LIMIT $2""",
}


def upgrade() -> None:
    for signature, query in FUNCTIONS.items():
        arguments = ", ".join(a.split()[0] for a in signature.rstrip(")").split("(")[1].split(", "))
        op.execute(
            f"CREATE FUNCTION {signature} RETURNS SETOF uuid LANGUAGE plpgsql STABLE "
            "SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$\n"
            f"BEGIN RETURN QUERY EXECUTE {_quoted(query)} USING {arguments}; END\n$fn$"
        )
        op.execute(f"REVOKE ALL ON FUNCTION {_name(signature)} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {_name(signature)} TO dashin_app")


def _quoted(sql: str) -> str:
    return "'" + sql.replace("'", "''") + "'"


def downgrade() -> None:
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {_name(signature)}")


def _name(signature: str) -> str:
    """`f(a text, b integer)` → `f(text, integer)`."""
    name, args = signature.rstrip(")").split("(")
    return f"{name}({', '.join(a.split()[-1] for a in args.split(', '))})"
