"""`POST /jobs` with `"estimate": true`: what a job would fetch and spend, spending nothing.

The connector's `estimate` makes free calls only (a one-record search); the credits are capped
by the job's `max_credits` there and by the source's budgets here, so the figure is the most the
job could spend if started now.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api import source_configs
from api.schemas.jobs import JobEstimateOut
from models import credits
from models.sources import DataSource


def estimate(session: Session, source: DataSource, params: dict[str, Any]) -> JobEstimateOut:
    cls = source_configs.connector_class(source.type, field="data_source_id")
    config = source_configs.connector_config(source)
    found = cls().estimate(config, cls.Params.model_validate(params))
    left = credits.new_job_allowance(session, source.id)
    spend = found.credits if left is None else min(found.credits, left)
    return JobEstimateOut(
        data_source_id=source.id, matches=found.matches, credits=spend, budget_left=left
    )
