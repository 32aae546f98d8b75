"""Campaigns and their UTM links with click tracking."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import (
    Base,
    DomainResource,
    created_at,
    domain_fk,
    enum_check,
    jsonb_default,
    updated_at,
)

CAMPAIGN_STATUSES = ("active", "paused", "completed")


class Campaign(DomainResource, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        UniqueConstraint("domain_id", "slug"),
        enum_check("status", CAMPAIGN_STATUSES),
        Index("ix_campaigns_domain_status", "domain_id", "status"),
    )

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(100))
    objective: Mapped[str | None] = mapped_column(Text)
    targeting_criteria: Mapped[dict[str, Any]] = jsonb_default()
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    #: the agency's client this campaign is for (None: none); a client with live campaigns
    #: cannot be deleted (409), so SET NULL only ever touches deleted campaigns
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), index=True
    )
    deleted_at: Mapped[datetime | None]


class Link(DomainResource, Base):
    __tablename__ = "links"

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    destination_url: Mapped[str] = mapped_column(Text)
    utm_source: Mapped[str] = mapped_column(String(200))
    utm_medium: Mapped[str] = mapped_column(String(200))
    utm_campaign: Mapped[str] = mapped_column(String(200))
    utm_content: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    full_url: Mapped[str] = mapped_column(Text)
    short_code: Mapped[str] = mapped_column(String(32), unique=True)
    clicks: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    deleted_at: Mapped[datetime | None]


class LinkClick(Base):
    """One redirect through `/r/{code}`; no raw IP is ever stored."""

    __tablename__ = "link_clicks"
    __table_args__ = (Index("ix_link_clicks_link_ts", "link_id", "ts"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    domain_id: Mapped[uuid.UUID] = domain_fk()
    ts: Mapped[datetime] = created_at()
    referrer: Mapped[str | None] = mapped_column(Text)
    ua_family: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))


class CampaignMetrics(Base):
    """Per-campaign lead counts, kept current by statement triggers on `leads` (migration 0002).

    Triggers, not application code, maintain it so that every writer — the lead sink included —
    keeps it true; each change also sends `NOTIFY campaign_metrics, '<campaign_id>'`.
    Soft-deleted leads are not counted.
    """

    __tablename__ = "campaign_metrics"

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    domain_id: Mapped[uuid.UUID] = domain_fk()
    leads: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    new: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    contacted: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    responded: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    qualified: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rejected: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    converted: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated_at: Mapped[datetime] = updated_at()
