"""The lead score (0-100): one formula, written twice — in Python and as a SQL function.

    score = status + qualification + priority + completeness + recency     (each part below)

    status          new 5, contacted 10, responded 20, qualified 30, converted 35, rejected 0
    qualification   5 x the qualification score (1..5), 0 when not qualified yet     (max 25)
    priority        low 0, medium 5, high 10
    completeness    2 per filled field of COMPLETENESS_FIELDS (10 fields)             (max 20)
    recency         by the lead's age: ≤ 7 days 10, ≤ 30 days 6, ≤ 90 days 3, older 0

Why the database computes it: the stored, indexed `score` must be right after *any* write —
sink, API, bulk, psql — and `ORDER BY score` is a keyset scan over `ix_leads_domain_score_id`.
`BEFORE` row triggers (`leads_set_score`, migrations 0002 and 0018) call `lead_score(...)` on
every updated row and on every inserted row that comes without a score. The lead sink is the
one writer that gives it: its new leads are all `new`, `medium`, unqualified and created now,
so `new_lead_score` (this formula) is known per row from the page's own values, and a bulk
insert skips one PL/pgSQL call per row (~10% of a COPY into `leads`, `bench/write_costs.py`).

Recency is the one input that changes without a write. Its term only moves when a lead crosses
the 7/30/90-day boundaries, so `refresh_scores` (run once a day) rewrites just the rows whose
stored score differs from today's; between runs a score can be at most one recency step stale.

`lead_score` (Python) is the reference the SQL function is tested against.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

STATUS_POINTS = {
    "new": 5,
    "contacted": 10,
    "responded": 20,
    "qualified": 30,
    "converted": 35,
    "rejected": 0,
}
PRIORITY_POINTS = {"low": 0, "medium": 5, "high": 10}
QUALIFICATION_POINTS_PER_STEP = 5
COMPLETENESS_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "title",
    "company_name",
    "company_domain",
    "company_industry",
    "linkedin_url",
    "country",
)
POINTS_PER_FIELD = 2
#: (maximum age in days, points), first match wins; older than the last → 0
RECENCY_STEPS = ((7, 10), (30, 6), (90, 3))


def recency_points(created_at: datetime, now: datetime) -> int:
    age_days = (now - created_at).total_seconds() / 86400
    for max_days, points in RECENCY_STEPS:
        if age_days <= max_days:
            return points
    return 0


def lead_score(
    *,
    status: str,
    priority: str,
    qualification_score: int | None,
    filled_fields: int,
    created_at: datetime,
    now: datetime,
) -> int:
    """The reference formula (module docstring). Always within 0..100."""
    total = (
        STATUS_POINTS.get(status, 0)
        + QUALIFICATION_POINTS_PER_STEP * min(max(qualification_score or 0, 0), 5)
        + PRIORITY_POINTS.get(priority, 0)
        + POINTS_PER_FIELD * min(max(filled_fields, 0), len(COMPLETENESS_FIELDS))
        + recency_points(created_at, now)
    )
    return max(0, min(100, total))


def _case(column: str, points: dict[str, int]) -> str:
    arms = " ".join(f"WHEN '{k}' THEN {v}" for k, v in points.items())
    return f"CASE {column} {arms} ELSE 0 END"


def _recency_sql() -> str:
    arms = " ".join(
        f"WHEN now - created_at <= interval '{days} days' THEN {points}"
        for days, points in RECENCY_STEPS
    )
    return f"CASE {arms} ELSE 0 END"


#: `lead_score(status, priority, qualification_score, filled_fields, created_at, now)`;
#: IMMUTABLE because `now` is an argument, so it may be inlined and used in expressions.
SCORE_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION lead_score(
    status text, priority text, qualification_score integer, filled_fields integer,
    created_at timestamptz, now timestamptz
) RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(0, least(100,
        {_case("status", STATUS_POINTS)}
        + {QUALIFICATION_POINTS_PER_STEP} * least(greatest(coalesce(qualification_score, 0), 0), 5)
        + {_case("priority", PRIORITY_POINTS)}
        + {POINTS_PER_FIELD} * least(greatest(filled_fields, 0), {len(COMPLETENESS_FIELDS)})
        + {_recency_sql()}
    ))::smallint
$$
"""


def filled_fields_sql(row: str) -> str:
    """SQL counting the filled completeness fields of `row` (`NEW` in a trigger, `l` in a query)."""
    return " + ".join(f"({row}.{f} IS NOT NULL)::int" for f in COMPLETENESS_FIELDS)


def score_call_sql(row: str, now: str = "now()") -> str:
    """The `lead_score(...)` call for the row named `row`."""
    return (
        f"lead_score({row}.status, {row}.priority, ({row}.qualification->>'score')::integer, "
        f"{filled_fields_sql(row)}, {row}.created_at, {now})"
    )


SCORE_TRIGGER_SQL = f"""
CREATE OR REPLACE FUNCTION leads_set_score() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.score := {score_call_sql("NEW")};
    RETURN NEW;
END $$;
CREATE TRIGGER trg_leads_score_insert BEFORE INSERT ON leads
    FOR EACH ROW WHEN (NEW.score IS NULL) EXECUTE FUNCTION leads_set_score();
CREATE TRIGGER trg_leads_score_update BEFORE UPDATE ON leads
    FOR EACH ROW EXECUTE FUNCTION leads_set_score();
"""

DROP_SCORE_SQL = """
DROP TRIGGER IF EXISTS trg_leads_score_insert ON leads;
DROP TRIGGER IF EXISTS trg_leads_score_update ON leads;
DROP FUNCTION IF EXISTS leads_set_score();
DROP FUNCTION IF EXISTS lead_score(text, text, integer, integer, timestamptz, timestamptz);
"""


def new_lead_score(filled_fields: int) -> int:
    """The score of a lead inserted now with the column defaults (`new`, `medium`, no
    qualification) and `filled_fields` of COMPLETENESS_FIELDS set: what the trigger would set."""
    now = datetime.now(UTC)
    return lead_score(
        status="new",
        priority="medium",
        qualification_score=None,
        filled_fields=filled_fields,
        created_at=now,
        now=now,
    )


def refresh_scores(session: Session, domain_id: uuid.UUID | None = None) -> int:
    """Rewrite the scores whose recency term moved since they were computed; the row count.

    The trigger recomputes the score on the UPDATE, so the statement only has to pick the rows.
    """
    where = "AND domain_id = :domain_id" if domain_id is not None else ""
    result = session.execute(
        text(
            f"UPDATE leads l SET score = 0 WHERE deleted_at IS NULL {where} "
            f"AND score <> {score_call_sql('l')}"
        ),
        {"domain_id": domain_id},
    )
    return int(getattr(result, "rowcount", 0) or 0)
