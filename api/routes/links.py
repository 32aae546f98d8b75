"""UTM links of campaigns: create, change or delete one or many, list, and their click analytics.

Members and managers write (links are campaign work, ARCHITECTURE §7); viewers read.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, status
from sqlalchemy import Select
from sqlalchemy.orm import Session

from api.audit import AuditedIdempotentRoute
from api.deps import ReaderDep, SessionDep, WriterDep, clients_of
from api.pagination import Page, PageParams, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.analytics import GroupBy, LinkAnalyticsOut, PeriodOut, Range, TimeZone
from api.schemas.clients import ClientFilter
from api.schemas.leads import BulkItemOut, BulkOut
from api.schemas.links import LinkBulkCreate, LinkBulkIn, LinkCreate, LinkOut, LinkUpdate
from models import analytics_repo as ar
from models import campaigns_repo, links_repo
from models.campaigns import Link, LinkClick
from runtime.errors import FieldError, ValidationFailed

router = APIRouter(tags=["links"], route_class=AuditedIdempotentRoute)
REQUIRED = ("destination_url", "utm_source", "utm_medium", "utm_campaign")


def _refuse_nulls(changes: dict[str, object]) -> None:
    nulled = [f for f in REQUIRED if f in changes and changes[f] is None]
    if nulled:
        raise ValidationFailed(
            "these fields cannot be null",
            [FieldError(f, "null_not_allowed", "cannot be null") for f in nulled],
        )


@router.post(
    "/campaigns/{campaign_id}/links",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 422),
)
def create_link(
    campaign_id: uuid.UUID, body: LinkCreate, principal: WriterDep, session: SessionDep
) -> LinkOut:
    """A UTM-tagged short link for the campaign (`/r/{code}` redirects to the destination)."""
    campaign = campaigns_repo.get_campaign(session, principal.domain_id, campaign_id)
    link = links_repo.create_link(
        session,
        campaign,
        created_by=principal.user_id,
        destination_url=body.destination_url,
        utm=body.model_dump(exclude={"destination_url"}),
    )
    return LinkOut.model_validate(link)


@router.post(
    "/campaigns/{campaign_id}/links/bulk",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 422),
)
def bulk_create_links(
    campaign_id: uuid.UUID, body: LinkBulkCreate, principal: WriterDep, session: SessionDep
) -> list[LinkOut]:
    """Many variants at once (one transaction): all are created or none."""
    campaign = campaigns_repo.get_campaign(session, principal.domain_id, campaign_id)
    return [
        LinkOut.model_validate(
            links_repo.create_link(
                session,
                campaign,
                created_by=principal.user_id,
                destination_url=body.destination_url,
                utm=variant.model_dump(),
            )
        )
        for variant in body.expand()
    ]


def _page_of_links(session: Session, query: Select[Link], page: PageParams) -> Page[LinkOut]:
    rows = paginate(
        session,
        query,
        page,
        sortable={"created_at": Link.created_at, "clicks": Link.clicks},
        id_column=Link.id,
    )
    return rows.to_page([LinkOut.model_validate(link) for link in rows.rows])


@router.get("/campaigns/{campaign_id}/links", responses=problem_responses(404, 422))
def list_links(
    campaign_id: uuid.UUID, principal: ReaderDep, session: SessionDep, page: PageParamsDep
) -> Page[LinkOut]:
    """The campaign's links, a page at a time."""
    clients = principal.client_ids
    campaigns_repo.get_campaign(session, principal.domain_id, campaign_id, clients=clients)
    query = links_repo.links_query(principal.domain_id, campaign_id, clients=clients)
    return _page_of_links(session, query, page)


@router.get("/links", responses=problem_responses(422))
def list_all_links(
    principal: ReaderDep,
    session: SessionDep,
    page: PageParamsDep,
    campaign_id: uuid.UUID | None = None,
    client_id: ClientFilter = None,
) -> Page[LinkOut]:
    """The domain's links across campaigns (of one campaign, or of one client's campaigns)."""
    clients = clients_of(principal, client_id)
    query = links_repo.links_query(principal.domain_id, campaign_id, clients=clients)
    return _page_of_links(session, query, page)


@router.get("/links/{link_id}", responses=problem_responses(404))
def get_link(link_id: uuid.UUID, principal: ReaderDep, session: SessionDep) -> LinkOut:
    """One link with its UTM fields and short code."""
    return LinkOut.model_validate(
        links_repo.get_link(session, principal.domain_id, link_id, clients=principal.client_ids)
    )


@router.patch("/links/{link_id}", responses=problem_responses(403, 404, 422))
def update_link(
    link_id: uuid.UUID, body: LinkUpdate, principal: WriterDep, session: SessionDep
) -> LinkOut:
    """Change a link's destination or UTM fields; its short code stays."""
    changes = body.model_dump(exclude_unset=True)
    _refuse_nulls(changes)
    link = links_repo.get_link(session, principal.domain_id, link_id)
    return LinkOut.model_validate(links_repo.update_link(session, link, changes))


@router.delete(
    "/links/{link_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
def delete_link(link_id: uuid.UUID, principal: WriterDep, session: SessionDep) -> None:
    """Soft delete: the short code stops redirecting and is never handed out again."""
    links_repo.soft_delete_link(session, links_repo.get_link(session, principal.domain_id, link_id))


@router.post("/links/bulk", responses=problem_responses(403, 422))
def bulk_links(body: LinkBulkIn, principal: WriterDep, session: SessionDep) -> BulkOut:
    """Change or delete up to 1,000 links in one transaction, with a result per id (`not_found`
    for an id that is not a live link of this domain; the others still apply)."""
    changes = body.update.model_dump(exclude_unset=True) if body.update else {}
    _refuse_nulls(changes)
    found = links_repo.live_links(session, principal.domain_id, body.ids)
    items = []
    for link_id in dict.fromkeys(body.ids):  # each id once, in the order sent
        link = found.get(link_id)
        if link is None:
            missing = BulkItemOut(id=link_id, ok=False, code="not_found", message="no such link")
            items.append(missing)
            continue
        if body.action == "delete":
            links_repo.soft_delete_link(session, link)
        else:
            links_repo.update_link(session, link, changes)
        items.append(BulkItemOut(id=link_id, ok=True))
    succeeded = sum(1 for i in items if i.ok)
    return BulkOut(
        action=body.action, succeeded=succeeded, failed=len(items) - succeeded, results=items
    )


@router.get("/links/{link_id}/analytics", responses=problem_responses(404, 422))
def link_analytics(
    link_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    range: Range = "30d",
    group_by: GroupBy = "day",
    tz: TimeZone = "UTC",
) -> LinkAnalyticsOut:
    """Clicks over time, by country, browser family and referrer, in the period."""
    link = links_repo.get_link(session, principal.domain_id, link_id, clients=principal.client_ids)
    p = ar.period(range, tz, datetime.now(UTC))
    where = (LinkClick.link_id == link.id, LinkClick.ts >= p.start, LinkClick.ts < p.end)
    timeline = ar.clicks_timeline(session, p, group_by, LinkClick.link_id == link.id)
    return LinkAnalyticsOut(
        link_id=link.id,
        period=PeriodOut.of(p, range),
        group_by=group_by,
        clicks_total=link.clicks,
        clicks=sum(b["clicks"] for b in timeline),
        timeline=timeline,
        countries=ar.counted_by(session, LinkClick.country, p, *where),
        browsers=ar.counted_by(session, LinkClick.ua_family, p, *where),
        referrers=ar.counted_by(session, LinkClick.referrer, p, *where),
    )
