"""Schemas of the credit ledger and budgets (issue 19)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import examples as ex
from api.schemas.common import example

Credits = Annotated[int | None, Field(ge=0, le=100_000_000)]


_DAYS_EXAMPLE = [
    {"data_source_id": ex.SOURCE_ID, "day": "2026-11-02", "credits": 468},
    {"data_source_id": ex.SOURCE_ID, "day": "2026-11-09", "credits": 212},
]


class CreditDay(BaseModel):
    model_config = example(_DAYS_EXAMPLE[0])

    data_source_id: uuid.UUID
    day: date
    credits: int


class CreditsOut(BaseModel):
    """Credits spent by (data source, day), oldest first, and their total."""

    model_config = example({"items": _DAYS_EXAMPLE, "total": 680})

    items: list[CreditDay]
    total: int


class CreditBudgetIn(BaseModel):
    """Fields sent are changed; `null` removes that budget."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"monthly_credit_budget": 5000, "job_credit_budget": 500}]},
    )

    monthly_credit_budget: Credits = None
    job_credit_budget: Credits = None


class CreditBudgetOut(BaseModel):
    model_config = example(
        {
            "data_source_id": ex.SOURCE_ID,
            "monthly_credit_budget": 5000,
            "job_credit_budget": 500,
            "month_spent": 680,
            # the provider's balance: only providers that report it (ZoomInfo)
            "balance": None,
            "balance_at": None,
        }
    )

    data_source_id: uuid.UUID
    monthly_credit_budget: int | None
    job_credit_budget: int | None
    #: credits the source spent this calendar month (UTC)
    month_spent: int
    #: the provider's credits left, as its usage headers last said (ZoomInfo), and when
    balance: int | None = None
    balance_at: datetime | None = None
