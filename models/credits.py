"""The credit ledger: provider credits spent per data source, job and day, and the budgets.

Why a ledger and not only `jobs.credits_used`: budgets are monthly per data source across jobs
(and survive a job's purge), and agencies reconcile by day with the provider's invoice. A page
that spent credits adds them here in its own transaction (the runner's page commit), so the
ledger and the committed leads never disagree.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Integer,
    Select,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, domain_fk
from models.jobs import Job
from models.sources import DataSource


class CreditEntry(Base):
    __tablename__ = "credit_ledger"
    __table_args__ = (UniqueConstraint("data_source_id", "job_id", "day"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    domain_id: Mapped[uuid.UUID] = domain_fk()
    data_source_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE")
    )
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    day: Mapped[date] = mapped_column(Date)
    credits: Mapped[int] = mapped_column(Integer)


def record(
    session: Session,
    *,
    domain_id: uuid.UUID,
    data_source_id: uuid.UUID,
    job_id: uuid.UUID,
    credits: int,
) -> None:
    """Add `credits` to today's (UTC) row of the job, in the caller's transaction."""
    if credits <= 0:
        return
    today = datetime.now(UTC).date()
    stmt = insert(CreditEntry).values(
        domain_id=domain_id,
        data_source_id=data_source_id,
        job_id=job_id,
        day=today,
        credits=credits,
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["data_source_id", "job_id", "day"],
            set_={"credits": CreditEntry.credits + stmt.excluded.credits},
        )
    )


def month_spent(session: Session, data_source_id: uuid.UUID, today: date | None = None) -> int:
    today = today or datetime.now(UTC).date()
    first = today.replace(day=1)
    total = session.scalar(
        select(func.coalesce(func.sum(CreditEntry.credits), 0)).where(
            CreditEntry.data_source_id == data_source_id, CreditEntry.day >= first
        )
    )
    return int(total or 0)


def monthly_budget_spent(session: Session, data_source_id: uuid.UUID) -> bool:
    """The source has a monthly budget and this month's credits have reached it."""
    budget = session.scalar(
        select(DataSource.monthly_credit_budget).where(DataSource.id == data_source_id)
    )
    return budget is not None and month_spent(session, data_source_id) >= budget


def new_job_allowance(session: Session, data_source_id: uuid.UUID) -> int | None:
    """What a new job of the source may spend under its budgets (None: no budget)."""
    row = session.execute(
        select(DataSource.monthly_credit_budget, DataSource.job_credit_budget).where(
            DataSource.id == data_source_id
        )
    ).one()
    limits = [] if row.job_credit_budget is None else [int(row.job_credit_budget)]
    if row.monthly_credit_budget is not None:
        limits.append(max(0, int(row.monthly_credit_budget) - month_spent(session, data_source_id)))
    return min(limits) if limits else None


def job_budget(session: Session, job_id: uuid.UUID) -> int | None:
    """Credits the job may have spent in total by its end: the source's per-job budget and what
    its monthly budget leaves (plus what the job itself spent already); None: no budget."""
    row = session.execute(
        select(
            Job.credits_used,
            Job.data_source_id,
            DataSource.monthly_credit_budget,
            DataSource.job_credit_budget,
        )
        .join(DataSource, DataSource.id == Job.data_source_id)
        .where(Job.id == job_id)
    ).one()
    limits = []
    if row.job_credit_budget is not None:
        limits.append(int(row.job_credit_budget))
    if row.monthly_credit_budget is not None:
        left = int(row.monthly_credit_budget) - month_spent(session, row.data_source_id)
        limits.append(int(row.credits_used) + max(0, left))
    return min(limits) if limits else None


def usage_query(
    domain_id: uuid.UUID, start: date | None, end: date | None, data_source_id: uuid.UUID | None
) -> Select[uuid.UUID, date, int]:
    """Credits by (data source, day), oldest first; `end` inclusive."""
    query = (
        select(CreditEntry.data_source_id, CreditEntry.day, func.sum(CreditEntry.credits))
        .where(CreditEntry.domain_id == domain_id)
        .group_by(CreditEntry.data_source_id, CreditEntry.day)
        .order_by(CreditEntry.day, CreditEntry.data_source_id)
    )
    if data_source_id is not None:
        query = query.where(CreditEntry.data_source_id == data_source_id)
    if start is not None:
        query = query.where(CreditEntry.day >= start)
    if end is not None:
        query = query.where(CreditEntry.day <= end)
    return query


def set_budgets(
    session: Session, data_source_id: uuid.UUID, changes: dict[str, int | None]
) -> None:
    """Change the source's `monthly_credit_budget` / `job_credit_budget` (None: no budget)."""
    allowed = {k: v for k, v in changes.items() if k in BUDGET_FIELDS}
    if allowed:
        session.execute(update(DataSource).where(DataSource.id == data_source_id).values(**allowed))


BUDGET_FIELDS = ("monthly_credit_budget", "job_credit_budget")


def set_balance(session: Session, data_source_id: uuid.UUID, remaining: int) -> None:
    session.execute(
        update(DataSource)
        .where(DataSource.id == data_source_id)
        .values(credit_balance=remaining, credit_balance_at=func.now())
    )
