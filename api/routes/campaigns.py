"""Campaigns: members and managers write, viewers read; delete is soft.

A campaign may belong to one client (`client_id`); a viewer limited to clients sees only their
campaigns (404 for the others).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from api.audit import AuditedIdempotentRoute
from api.deps import ReaderDep, SessionDep, WriterDep, clients_of
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.campaigns import CampaignCreate, CampaignOut, CampaignStatus, CampaignUpdate
from api.schemas.clients import ClientFilter
from api.schemas.common import NO_NUL_PATTERN
from models import campaigns_repo, clients_repo
from models.campaigns import Campaign
from runtime.errors import FieldError, ValidationFailed

router = APIRouter(prefix="/campaigns", tags=["campaigns"], route_class=AuditedIdempotentRoute)


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, 422))
def create_campaign(body: CampaignCreate, principal: WriterDep, session: SessionDep) -> CampaignOut:
    """Create a campaign; its slug is derived from the name, unique within the domain."""
    if body.client_id is not None:
        clients_repo.check_clients(
            session, principal.domain_id, [body.client_id], field="client_id"
        )
    campaign = campaigns_repo.create_campaign(
        session,
        domain_id=principal.domain_id,
        created_by=principal.user_id,
        **body.model_dump(),
    )
    return CampaignOut.model_validate(campaign)


@router.get("", responses=problem_responses(422))
def list_campaigns(
    principal: ReaderDep,
    session: SessionDep,
    page: PageParamsDep,
    status: CampaignStatus | None = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL_PATTERN, description="Part of the name")
    ] = None,
    client_id: ClientFilter = None,
) -> Page[CampaignOut]:
    """The domain's campaigns the caller may see, a page at a time (`cursor`)."""
    clients = clients_of(principal, client_id)
    rows = paginate(
        session,
        campaigns_repo.campaigns_query(principal.domain_id, status=status, q=q, clients=clients),
        page,
        sortable={
            "created_at": Campaign.created_at,
            "updated_at": Campaign.updated_at,
            "name": Campaign.name,
        },
        id_column=Campaign.id,
    )
    return rows.to_page([CampaignOut.model_validate(c) for c in rows.rows])


@router.get("/{campaign_id}", responses=problem_responses(404))
def get_campaign(campaign_id: uuid.UUID, principal: ReaderDep, session: SessionDep) -> CampaignOut:
    """One campaign with its targeting criteria and status."""
    return CampaignOut.model_validate(
        campaigns_repo.get_campaign(
            session, principal.domain_id, campaign_id, clients=principal.client_ids
        )
    )


@router.patch("/{campaign_id}", responses=problem_responses(403, 404, 422))
def update_campaign(
    campaign_id: uuid.UUID, body: CampaignUpdate, principal: WriterDep, session: SessionDep
) -> CampaignOut:
    """Change the fields sent. `name`, `status` and `targeting_criteria` cannot be null;
    `client_id` null takes the campaign off its client."""
    changes = body.model_dump(exclude_unset=True)
    nulled = [
        f for f in ("name", "status", "targeting_criteria") if f in changes and changes[f] is None
    ]
    if nulled:
        raise ValidationFailed(
            "these fields cannot be null",
            [FieldError(f, "null_not_allowed", "cannot be null") for f in nulled],
        )
    campaign = campaigns_repo.get_campaign(session, principal.domain_id, campaign_id)
    if changes.get("client_id") is not None:
        clients_repo.check_clients(
            session, principal.domain_id, [changes["client_id"]], field="client_id"
        )
    return CampaignOut.model_validate(campaigns_repo.update_campaign(session, campaign, changes))


@router.delete(
    "/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404)
)
def delete_campaign(campaign_id: uuid.UUID, principal: WriterDep, session: SessionDep) -> None:
    """Delete (archive) a campaign: it no longer appears in lists or reads."""
    campaign = campaigns_repo.get_campaign(session, principal.domain_id, campaign_id)
    campaigns_repo.soft_delete_campaign(session, campaign)
