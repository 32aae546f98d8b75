"""Credits: what paid provider calls cost, per data source and day, and the sources' budgets.

Everyone in the domain reads the ledger; managers set budgets. A job whose next paid call would
pass its source's per-job or monthly budget pauses with `budget_exhausted` (`docs/credits.md`).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ManagerDep, ReaderDep, SessionDep
from api.problems import problem_responses
from api.schemas.credits import CreditBudgetIn, CreditBudgetOut, CreditDay, CreditsOut
from models import credits, sources_repo

router = APIRouter(tags=["credits"])

FromDay = Annotated[date | None, Query(alias="from", description="first day (UTC), inclusive")]
ToDay = Annotated[date | None, Query(alias="to", description="last day (UTC), inclusive")]


def _usage(
    session: SessionDep,
    domain_id: uuid.UUID,
    start: date | None,
    end: date | None,
    source_id: uuid.UUID | None,
) -> CreditsOut:
    rows = session.execute(credits.usage_query(domain_id, start, end, source_id)).all()
    items = [CreditDay(data_source_id=s, day=d, credits=int(c)) for s, d, c in rows]
    return CreditsOut(items=items, total=sum(i.credits for i in items))


@router.get("/credits", responses=problem_responses(422))
def list_credits(
    principal: ReaderDep, session: SessionDep, start: FromDay = None, end: ToDay = None
) -> CreditsOut:
    """The domain's credits by data source and day."""
    return _usage(session, principal.domain_id, start, end, None)


@router.get("/data-sources/{source_id}/credits", responses=problem_responses(404, 422))
def get_source_credits(
    source_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    start: FromDay = None,
    end: ToDay = None,
) -> CreditsOut:
    """One data source's credits by day."""
    sources_repo.get_source(session, source_id, principal.domain_id)
    return _usage(session, principal.domain_id, start, end, source_id)


def _budget(session: SessionDep, source_id: uuid.UUID, domain_id: uuid.UUID) -> CreditBudgetOut:
    source = sources_repo.get_source(session, source_id, domain_id)
    session.refresh(source)
    return CreditBudgetOut(
        data_source_id=source.id,
        monthly_credit_budget=source.monthly_credit_budget,
        job_credit_budget=source.job_credit_budget,
        month_spent=credits.month_spent(session, source.id),
        balance=source.credit_balance,
        balance_at=source.credit_balance_at,
    )


@router.get("/data-sources/{source_id}/credit-budget", responses=problem_responses(404))
def get_credit_budget(
    source_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> CreditBudgetOut:
    """The source's monthly and per-job credit budgets and this month's spending."""
    return _budget(session, source_id, principal.domain_id)


@router.patch("/data-sources/{source_id}/credit-budget", responses=problem_responses(403, 404, 422))
def update_credit_budget(
    source_id: uuid.UUID, body: CreditBudgetIn, principal: ManagerDep, session: SessionDep
) -> CreditBudgetOut:
    """Set or remove (`null`) budgets. A job paused for its budget carries on once resumed."""
    sources_repo.get_source(session, source_id, principal.domain_id)
    credits.set_budgets(session, source_id, body.model_dump(exclude_unset=True))
    return _budget(session, source_id, principal.domain_id)
