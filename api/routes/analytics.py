"""Analytics: the domain overview, one campaign, and leads over time (all in the caller's `tz`).

Numbers cover the leads the caller may see (a member: own campaigns and assigned leads).
Definitions live in `models.analytics_repo` and docs/leads.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ReaderDep, SessionDep, scope_of
from api.problems import problem_responses
from api.schemas.analytics import (
    CampaignAnalyticsOut,
    Change,
    GroupBy,
    LeadsAnalyticsOut,
    OverviewOut,
    PeriodOut,
    Range,
    Rates,
    TimeZone,
    TopCampaignsOut,
    TopMetric,
)
from api.schemas.clients import ClientFilter
from models import analytics_repo as ar
from models import campaigns_repo
from models.leads import LEAD_STATUSES
from models.leads_repo import LeadScope

router = APIRouter(prefix="/analytics", tags=["analytics"])


def _change(current: float | None, previous: float | None) -> Change:
    pct = None
    if current is not None and previous:
        pct = round((current - previous) / previous * 100, 2)
    return Change(current=current, previous=previous, change_pct=pct)


def _rates(counts: dict[str, int]) -> Rates:
    return Rates(
        response_rate=ar.rate(counts["reached_responded"], counts["leads"]),
        qualification_rate=ar.rate(counts["reached_qualified"], counts["leads"]),
        conversion_rate=ar.rate(counts["converted"], counts["leads"]),
    )


@router.get("/overview", responses=problem_responses(422))
def overview(
    principal: ReaderDep,
    session: SessionDep,
    range: Range = "30d",
    tz: TimeZone = "UTC",
    client_id: ClientFilter = None,
) -> OverviewOut:
    """Domain totals for a range (`30d`, ...), each compared with the range before: leads, new
    leads, response / qualification / conversion rates, jobs; and the top 5 campaigns by new
    leads (`GET /analytics/top-campaigns` ranks by other metrics). With `client_id` (and for a
    viewer limited to clients) the numbers cover those clients' campaigns, jobs included."""
    scope = scope_of(principal, client_id)
    p = ar.period(range, tz, datetime.now(UTC))
    now, before = (
        ar.lead_counts(session, scope, p.start, p.end),
        ar.lead_counts(session, scope, p.previous_start, p.start),
    )
    jobs_now = ar.jobs_counts(session, principal.domain_id, p.start, p.end, scope.client_ids)
    jobs_before = ar.jobs_counts(
        session, principal.domain_id, p.previous_start, p.start, scope.client_ids
    )
    total = ar.leads_total(session, scope, p.end)
    metrics: dict[str, tuple[Any, Any]] = {
        "leads_total": (total, total - now["leads"]),
        "new_leads": (now["leads"], before["leads"]),
        "qualified": (now["reached_qualified"], before["reached_qualified"]),
        "converted": (now["converted"], before["converted"]),
        "response_rate": (_rates(now).response_rate, _rates(before).response_rate),
        "qualification_rate": (_rates(now).qualification_rate, _rates(before).qualification_rate),
        "conversion_rate": (_rates(now).conversion_rate, _rates(before).conversion_rate),
        "jobs_run": (jobs_now["jobs_run"], jobs_before["jobs_run"]),
        "jobs_failed": (jobs_now["jobs_failed"], jobs_before["jobs_failed"]),
    }
    return OverviewOut(
        period=PeriodOut.of(p, range),
        **{name: value for name, (value, _) in metrics.items()},
        top_campaigns=ar.top_campaigns(session, scope, p.start, p.end),
        change={name: _change(cur, prev) for name, (cur, prev) in metrics.items()},
    )


@router.get("/top-campaigns", responses=problem_responses(422))
def top_campaigns(
    principal: ReaderDep,
    session: SessionDep,
    range: Range = "30d",
    tz: TimeZone = "UTC",
    metric: TopMetric = "leads",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    client_id: ClientFilter = None,
) -> TopCampaignsOut:
    """The campaigns ranked by `metric` over the leads created in the range (ties: more leads,
    then name). Rates are over the campaign's cohort; campaigns with no lead in it are left out."""
    p = ar.period(range, tz, datetime.now(UTC))
    scope = scope_of(principal, client_id)
    items = ar.top_campaigns(session, scope, p.start, p.end, limit, metric)
    return TopCampaignsOut(period=PeriodOut.of(p, range), metric=metric, items=items)


def _campaign_scope(scope: LeadScope, created_by: uuid.UUID | None) -> bool:
    """Whether the maintained totals may be shown: they count every lead of the campaign."""
    return not scope.restricted or created_by == scope.user_id


@router.get("/campaigns/{campaign_id}", responses=problem_responses(404, 422))
def campaign_analytics(
    campaign_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    range: Range = "30d",
    group_by: GroupBy = "day",
    tz: TimeZone = "UTC",
) -> CampaignAnalyticsOut:
    """One campaign's leads over a range, grouped by `group_by`, with the campaign's totals."""
    campaign = campaigns_repo.get_campaign(
        session, principal.domain_id, campaign_id, clients=principal.client_ids
    )
    scope = scope_of(principal)
    p = ar.period(range, tz, datetime.now(UTC))
    counts = ar.lead_counts(session, scope, p.start, p.end, campaign_id)
    if _campaign_scope(scope, campaign.created_by):
        totals = ar.campaign_totals(session, campaign_id)
    else:
        all_time = ar.lead_counts(
            session, scope, datetime.min.replace(tzinfo=UTC), p.end, campaign_id
        )
        totals = {k: all_time[k] for k in ("leads", *LEAD_STATUSES)}
    on_link = ar.campaign_clicks(principal.domain_id, campaign_id)
    clicks = ar.clicks_timeline(session, p, group_by, on_link)
    return CampaignAnalyticsOut(
        campaign_id=campaign_id,
        period=PeriodOut.of(p, range),
        group_by=group_by,
        totals=totals,
        timeline=ar.timeline(session, scope, p, group_by, campaign_id),
        status_distribution={s: counts[s] for s in LEAD_STATUSES},
        qualification_distribution=ar.qualification_distribution(
            session, scope, p.start, p.end, campaign_id
        ),
        rates=_rates(counts),
        link_clicks=sum(b["clicks"] for b in clicks),
        clicks_timeline=clicks,
    )


@router.get("/leads", responses=problem_responses(404, 422))
def leads_analytics(
    principal: ReaderDep,
    session: SessionDep,
    range: Range = "30d",
    group_by: GroupBy = "day",
    tz: TimeZone = "UTC",
    campaign_id: uuid.UUID | None = None,
    client_id: ClientFilter = None,
) -> LeadsAnalyticsOut:
    """New leads over a range grouped by `group_by`, for the domain, one client or one
    campaign."""
    scope = scope_of(principal, client_id)
    p = ar.period(range, tz, datetime.now(UTC))
    if campaign_id is not None:
        campaigns_repo.get_campaign(
            session, principal.domain_id, campaign_id, clients=principal.client_ids
        )
    counts = ar.lead_counts(session, scope, p.start, p.end, campaign_id)
    return LeadsAnalyticsOut(
        period=PeriodOut.of(p, range),
        group_by=group_by,
        campaign_id=campaign_id,
        leads=counts["leads"],
        timeline=ar.timeline(session, scope, p, group_by, campaign_id),
        status_distribution={s: counts[s] for s in LEAD_STATUSES},
        qualification_distribution=ar.qualification_distribution(
            session, scope, p.start, p.end, campaign_id
        ),
        rates=_rates(counts),
    )
