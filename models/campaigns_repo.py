"""Queries over campaigns: creation with a slug unique per domain, filtered lists, soft delete.

Deleted campaigns keep their row (leads and jobs still point at them) and their slug (so a link
or export made with it never starts meaning another campaign); every read here skips them.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, any_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.base import found
from models.campaigns import Campaign
from models.clients_repo import ClientScope, id_array
from runtime.errors import Conflict

_SLUG_ATTEMPTS = 5


def slugify(name: str) -> str:
    """`"Q3 Outreach — Café owners"` → `"q3-outreach-cafe-owners"` (ASCII, at most 80 chars)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80].rstrip("-")
    return slug or "campaign"


def _free_slug(session: Session, domain_id: uuid.UUID, base: str) -> str:
    """`base`, else `base-2`, `base-3`, ... : the first not taken in the domain (deleted too)."""
    taken = set(
        session.scalars(
            select(Campaign.slug).where(
                Campaign.domain_id == domain_id,
                (Campaign.slug == base) | Campaign.slug.startswith(base + "-", autoescape=True),
            )
        )
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def create_campaign(
    session: Session,
    *,
    domain_id: uuid.UUID,
    name: str,
    created_by: uuid.UUID | None,
    source: str | None = None,
    objective: str | None = None,
    targeting_criteria: dict[str, Any] | None = None,
    status: str = "active",
    client_id: uuid.UUID | None = None,
) -> Campaign:
    """Insert a campaign; a concurrent insert taking the same slug makes us pick the next one."""
    base = slugify(name)
    for _ in range(_SLUG_ATTEMPTS):
        campaign = Campaign(
            domain_id=domain_id,
            name=name,
            slug=_free_slug(session, domain_id, base),
            source=source,
            objective=objective,
            targeting_criteria=targeting_criteria or {},
            status=status,
            client_id=client_id,
            created_by=created_by,
        )
        try:
            with session.begin_nested():
                session.add(campaign)
                session.flush()
        except IntegrityError:
            continue
        session.refresh(campaign)
        return campaign
    raise Conflict(f"could not find a free slug for campaign {name!r}; retry")


def campaigns_query(
    domain_id: uuid.UUID,
    *,
    status: str | None = None,
    q: str | None = None,
    clients: ClientScope = None,
) -> Select[Campaign]:
    """Live campaigns of the domain; with `clients`, only those of these clients."""
    query = select(Campaign).where(Campaign.domain_id == domain_id, Campaign.deleted_at.is_(None))
    if clients is not None:
        query = query.where(Campaign.client_id == any_(id_array(clients)))
    if status is not None:
        query = query.where(Campaign.status == status)
    if q:
        query = query.where(Campaign.name.icontains(q, autoescape=True))
    return query


def get_campaign(
    session: Session,
    domain_id: uuid.UUID,
    campaign_id: uuid.UUID,
    *,
    clients: ClientScope = None,
) -> Campaign:
    return found(
        session.scalar(
            campaigns_query(domain_id, clients=clients).where(Campaign.id == campaign_id)
        ),
        "campaign",
        campaign_id,
    )


def update_campaign(session: Session, campaign: Campaign, changes: dict[str, Any]) -> Campaign:
    for field, value in changes.items():
        setattr(campaign, field, value)
    session.flush()
    session.refresh(campaign)  # updated_at is set by a trigger
    return campaign


def soft_delete_campaign(session: Session, campaign: Campaign) -> None:
    campaign.deleted_at = datetime.now(UTC)
    session.flush()


def ids_in_domain(
    session: Session, campaign_ids: Sequence[uuid.UUID], domain_id: uuid.UUID
) -> set[uuid.UUID]:
    """Those of `campaign_ids` that are live campaigns of `domain_id` (the live feed relays
    `campaign_metrics` doorbells with this)."""
    if not campaign_ids:
        return set()
    return set(
        session.scalars(
            campaigns_query(domain_id)
            .with_only_columns(Campaign.id)
            .where(Campaign.id.in_(campaign_ids))
        )
    )
