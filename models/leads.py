"""Leads, their identity keys (ARCHITECTURE §6) and provenance."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ColumnElement,
    FetchedValue,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, enum_check, jsonb_default, updated_at, uuid_pk
from records import FIELD_MAX_LEN

#: the predicate of the partial tag index; the tag filter states it so that the index applies
TAGGED = "tags <> '{}'::text[]"

LEAD_STATUSES = ("new", "contacted", "responded", "qualified", "rejected", "converted")
LEAD_PRIORITIES = ("low", "medium", "high")


def _lead_column(name: str) -> Mapped[str | None]:
    """A lead field's column, as wide as its declaration in `records` says."""
    return mapped_column(String(FIELD_MAX_LEN[name]))


class Lead(Base):
    """A person of a domain; the lead-field columns mirror `records.LeadRecord` (see
    `LEAD_FIELDS`), typed here for the ORM and as wide as their declaration."""

    __tablename__ = "leads"
    __table_args__ = (
        enum_check("status", LEAD_STATUSES),
        enum_check("priority", LEAD_PRIORITIES),
        CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
        Index("ix_leads_domain_created", "domain_id", "created_at", "id"),
        Index("ix_leads_domain_status", "domain_id", "status"),
        # keyset sorts: (sort column, id) after the domain (migration 0002)
        Index("ix_leads_domain_score_id", "domain_id", "score", "id"),
        Index("ix_leads_domain_updated", "domain_id", "updated_at", "id"),
        Index("ix_leads_campaign_created", "campaign_id", "created_at"),
        Index("ix_leads_assigned_to", "assigned_to"),
        # partial (migrations 0018, 0022): untagged leads, i.e. every imported one, write no entry
        Index("ix_leads_tags", "tags", postgresql_using="gin", postgresql_where=text(TAGGED)),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # not indexed alone (migration 0018): every index above starts with it
    domain_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    first_name: Mapped[str | None] = _lead_column("first_name")
    last_name: Mapped[str | None] = _lead_column("last_name")
    email: Mapped[str | None] = _lead_column("email")
    title: Mapped[str | None] = _lead_column("title")
    company_name: Mapped[str | None] = _lead_column("company_name")
    company_domain: Mapped[str | None] = _lead_column("company_domain")
    company_industry: Mapped[str | None] = _lead_column("company_industry")
    company_size: Mapped[str | None] = _lead_column("company_size")
    linkedin_url: Mapped[str | None] = _lead_column("linkedin_url")
    phone: Mapped[str | None] = _lead_column("phone")
    city: Mapped[str | None] = _lead_column("city")
    state: Mapped[str | None] = _lead_column("state")
    country: Mapped[str | None] = _lead_column("country")
    status: Mapped[str] = mapped_column(String(16), server_default="new")
    priority: Mapped[str] = mapped_column(String(8), server_default="medium")
    # set by the score triggers unless the writer gives it (models.scoring, migration 0018)
    score: Mapped[int] = mapped_column(SmallInteger, server_default=FetchedValue())
    qualification: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    custom_fields: Mapped[dict[str, Any]] = jsonb_default()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    deleted_at: Mapped[datetime | None]


#: Columns the lead list's `q` searches (substring, case-insensitive, trigram-indexed).
SEARCH_COLUMNS = ("first_name", "last_name", "email", "company_name", "title")


def lead_search_text() -> ColumnElement[str]:
    """`lower(coalesce(first_name, '') || ' ' || ...)`: the expression `ix_leads_search_trgm`
    indexes. Queries must use this very expression (literals inline) for the index to apply."""
    blank: ColumnElement[str] = literal_column("''")
    space: ColumnElement[str] = literal_column("' '")
    joined: ColumnElement[str] = func.coalesce(getattr(Lead, SEARCH_COLUMNS[0]), blank)
    for name in SEARCH_COLUMNS[1:]:
        joined = joined.op("||")(space).op("||")(func.coalesce(getattr(Lead, name), blank))
    return func.lower(joined)


Index(
    "ix_leads_search_trgm",
    lead_search_text().label("search_text"),
    postgresql_using="gin",
    postgresql_ops={"search_text": "gin_trgm_ops"},
    # merged after commit by the worker's search merger, not in the page (migration 0018)
    postgresql_with={"fastupdate": "on", "gin_pending_list_limit": 65536},
    _table=Lead.__table__,  # type: ignore[arg-type]  # a declarative __table__ is a Table
)


class LeadKey(Base):
    """`email:…`, `li:…`, `ext:<provider>:<id>`: one owner lead per key per domain."""

    __tablename__ = "lead_keys"

    # No foreign key to `domains` (migration 0018): the row hangs off its lead, whose domain
    # is checked, and goes with it (`lead_id` cascades).
    domain_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), index=True
    )


class LeadSource(Base):
    """Provenance: which data source and job produced a lead. One row per (job, lead)."""

    __tablename__ = "lead_sources"
    __table_args__ = (UniqueConstraint("job_id", "lead_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # Indexed for the console's per-source chart; no foreign key to `domains` (migration 0018):
    # the row goes with its lead (`lead_id` cascades), whose domain is checked.
    domain_id: Mapped[uuid.UUID] = mapped_column(index=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), index=True
    )
    data_source_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("data_sources.id", ondelete="SET NULL"), index=True
    )
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(300))
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at()
