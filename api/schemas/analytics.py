"""Bodies of the analytics endpoints (definitions in docs/leads.md and models.analytics_repo)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Query
from pydantic import AfterValidator, BaseModel

from models.analytics_repo import Period

Range = Literal["7d", "30d", "90d", "1y"]
GroupBy = Literal["day", "week", "month"]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone such as Europe/Oslo") from exc
    return value


TimeZone = Annotated[
    str, AfterValidator(_zone), Query(max_length=64, description="IANA zone; default UTC")
]


class PeriodOut(BaseModel):
    range: Range
    tz: str
    start: datetime
    end: datetime
    previous_start: datetime

    @classmethod
    def of(cls, p: Period, range_: Range) -> PeriodOut:
        return cls(range=range_, tz=p.tz, start=p.start, end=p.end, previous_start=p.previous_start)


class Change(BaseModel):
    """A metric now and in the previous period; `change_pct` is null when the previous is 0."""

    current: float | None
    previous: float | None
    change_pct: float | None


TopMetric = Literal[
    "leads",
    "responded",
    "qualified",
    "converted",
    "response_rate",
    "qualification_rate",
    "conversion_rate",
]


class TopCampaign(BaseModel):
    """A campaign's cohort in the period: counts of its leads created then, and rates over them."""

    id: uuid.UUID
    name: str
    leads: int
    responded: int
    qualified: int
    converted: int
    response_rate: float | None
    qualification_rate: float | None
    conversion_rate: float | None


class TopCampaignsOut(BaseModel):
    period: PeriodOut
    metric: TopMetric
    items: list[TopCampaign]


class OverviewOut(BaseModel):
    period: PeriodOut
    leads_total: int
    new_leads: int
    qualified: int
    converted: int
    response_rate: float | None
    qualification_rate: float | None
    conversion_rate: float | None
    jobs_run: int
    jobs_failed: int
    top_campaigns: list[TopCampaign]
    change: dict[str, Change]


class LeadBucket(BaseModel):
    bucket: date
    leads: int
    qualified: int
    converted: int


class ClickBucket(BaseModel):
    bucket: date
    clicks: int


class Rates(BaseModel):
    response_rate: float | None
    qualification_rate: float | None
    conversion_rate: float | None


class CampaignAnalyticsOut(BaseModel):
    campaign_id: uuid.UUID
    period: PeriodOut
    group_by: GroupBy
    totals: dict[str, int]
    timeline: list[LeadBucket]
    status_distribution: dict[str, int]
    qualification_distribution: dict[str, int]
    rates: Rates
    link_clicks: int
    clicks_timeline: list[ClickBucket]


class LeadsAnalyticsOut(BaseModel):
    period: PeriodOut
    group_by: GroupBy
    campaign_id: uuid.UUID | None
    leads: int
    timeline: list[LeadBucket]
    status_distribution: dict[str, int]
    qualification_distribution: dict[str, int]
    rates: Rates


class Counted(BaseModel):
    value: str | None
    count: int


class LinkAnalyticsOut(BaseModel):
    link_id: uuid.UUID
    period: PeriodOut
    group_by: GroupBy
    clicks_total: int
    clicks: int
    timeline: list[ClickBucket]
    countries: list[Counted]
    browsers: list[Counted]
    referrers: list[Counted]
