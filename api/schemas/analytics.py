"""Bodies of the analytics endpoints (definitions in docs/leads.md and models.analytics_repo)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Query
from pydantic import AfterValidator, BaseModel

from api.schemas import examples as ex
from api.schemas.common import example
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


# One campaign's week in Berlin: the 7 local days to Friday 20 November 2026, 16:45 UTC, by week
# (the first bucket starts on the Monday before the period, as `date_trunc` has it). The numbers
# add up across examples: 120 new leads, 18 of them qualified and 5 converted.
_PERIOD_EXAMPLE = {
    "range": "7d",
    "tz": "Europe/Berlin",
    "start": "2026-11-14T00:00:00+01:00",
    "end": ex.UPDATED_AT,
    "previous_start": "2026-11-07T00:00:00+01:00",
}
_RATES_EXAMPLE = {"response_rate": 0.25, "qualification_rate": 0.15, "conversion_rate": 0.0417}
_TIMELINE_EXAMPLE = [
    {"bucket": "2026-11-09", "leads": 52, "qualified": 7, "converted": 2},
    {"bucket": "2026-11-16", "leads": 68, "qualified": 11, "converted": 3},
]
_CLICKS_EXAMPLE = [{"bucket": "2026-11-09", "clicks": 41}, {"bucket": "2026-11-16", "clicks": 63}]
_STATUSES_EXAMPLE = {
    "new": 60,
    "contacted": 30,
    "responded": 7,
    "qualified": 13,
    "rejected": 5,
    "converted": 5,
}
_SCORES_EXAMPLE = {"1": 2, "2": 3, "3": 4, "4": 10, "5": 8, "unqualified": 93}
_TOP_CAMPAIGN_EXAMPLE = {
    "id": ex.CAMPAIGN_ID,
    "name": "Q3 CFO outreach",
    "leads": 120,
    "responded": 30,
    "qualified": 18,
    "converted": 5,
    **_RATES_EXAMPLE,
}


class PeriodOut(BaseModel):
    model_config = example(_PERIOD_EXAMPLE)

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

    model_config = example({"current": 120, "previous": 96, "change_pct": 25.0})

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

    model_config = example(_TOP_CAMPAIGN_EXAMPLE)

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
    model_config = example(
        {"period": _PERIOD_EXAMPLE, "metric": "leads", "items": [_TOP_CAMPAIGN_EXAMPLE]}
    )

    period: PeriodOut
    metric: TopMetric
    items: list[TopCampaign]


class OverviewOut(BaseModel):
    model_config = example(
        {
            "period": _PERIOD_EXAMPLE,
            "leads_total": 1240,
            "new_leads": 120,
            "qualified": 18,
            "converted": 5,
            **_RATES_EXAMPLE,
            "jobs_run": 6,
            "jobs_failed": 1,
            "top_campaigns": [_TOP_CAMPAIGN_EXAMPLE],
            "change": {
                "leads_total": {"current": 1240, "previous": 1120, "change_pct": 10.71},
                "new_leads": {"current": 120, "previous": 96, "change_pct": 25.0},
                "qualified": {"current": 18, "previous": 12, "change_pct": 50.0},
                "converted": {"current": 5, "previous": 4, "change_pct": 25.0},
                "response_rate": {"current": 0.25, "previous": 0.2083, "change_pct": 20.02},
                "qualification_rate": {"current": 0.15, "previous": 0.125, "change_pct": 20.0},
                "conversion_rate": {"current": 0.0417, "previous": 0.0417, "change_pct": 0.0},
                "jobs_run": {"current": 6, "previous": 5, "change_pct": 20.0},
                "jobs_failed": {"current": 1, "previous": 0, "change_pct": None},
            },
        }
    )

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
    model_config = example(_TIMELINE_EXAMPLE[0])

    bucket: date
    leads: int
    qualified: int
    converted: int


class ClickBucket(BaseModel):
    model_config = example(_CLICKS_EXAMPLE[0])

    bucket: date
    clicks: int


class Rates(BaseModel):
    model_config = example(_RATES_EXAMPLE)

    response_rate: float | None
    qualification_rate: float | None
    conversion_rate: float | None


class CampaignAnalyticsOut(BaseModel):
    model_config = example(
        {
            "campaign_id": ex.CAMPAIGN_ID,
            "period": _PERIOD_EXAMPLE,
            "group_by": "week",
            # all time, from the campaign's metrics row; the rest covers the period
            "totals": {
                "leads": 412,
                "new": 240,
                "contacted": 96,
                "responded": 30,
                "qualified": 25,
                "rejected": 10,
                "converted": 11,
            },
            "timeline": _TIMELINE_EXAMPLE,
            "status_distribution": _STATUSES_EXAMPLE,
            "qualification_distribution": _SCORES_EXAMPLE,
            "rates": _RATES_EXAMPLE,
            "link_clicks": 104,
            "clicks_timeline": _CLICKS_EXAMPLE,
        }
    )

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
    model_config = example(
        {
            "period": _PERIOD_EXAMPLE,
            "group_by": "week",
            "campaign_id": ex.CAMPAIGN_ID,
            "leads": 120,
            "timeline": _TIMELINE_EXAMPLE,
            "status_distribution": _STATUSES_EXAMPLE,
            "qualification_distribution": _SCORES_EXAMPLE,
            "rates": _RATES_EXAMPLE,
        }
    )

    period: PeriodOut
    group_by: GroupBy
    campaign_id: uuid.UUID | None
    leads: int
    timeline: list[LeadBucket]
    status_distribution: dict[str, int]
    qualification_distribution: dict[str, int]
    rates: Rates


class Counted(BaseModel):
    model_config = example({"value": "DE", "count": 61}, {"value": None, "count": 13})

    value: str | None
    count: int


class LinkAnalyticsOut(BaseModel):
    model_config = example(
        {
            "link_id": ex.LINK_ID,
            "period": _PERIOD_EXAMPLE,
            "group_by": "week",
            "clicks_total": 318,
            "clicks": 104,
            "timeline": _CLICKS_EXAMPLE,
            "countries": [
                {"value": "DE", "count": 61},
                {"value": "US", "count": 30},
                {"value": None, "count": 13},
            ],
            "browsers": [
                {"value": "Chrome", "count": 58},
                {"value": "Safari", "count": 27},
                {"value": "Firefox", "count": 19},
            ],
            "referrers": [
                {"value": "https://www.linkedin.com/", "count": 72},
                {"value": None, "count": 32},
            ],
        }
    )

    link_id: uuid.UUID
    period: PeriodOut
    group_by: GroupBy
    clicks_total: int
    clicks: int
    timeline: list[ClickBucket]
    countries: list[Counted]
    browsers: list[Counted]
    referrers: list[Counted]
