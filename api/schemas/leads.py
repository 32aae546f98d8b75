"""Bodies of leads (ARCHITECTURE §9 wire shape: nested `company` and `location`, `sources`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from models.leads import Lead, LeadSource

LeadStatus = Literal["new", "contacted", "responded", "qualified", "rejected", "converted"]
LeadPriority = Literal["low", "medium", "high"]


class Company(BaseModel):
    name: str | None = Field(None, max_length=300)
    domain: str | None = Field(None, max_length=253)
    industry: str | None = Field(None, max_length=200)
    size: str | None = Field(None, max_length=50)


class Location(BaseModel):
    city: str | None = Field(None, max_length=200)
    state: str | None = Field(None, max_length=200)
    country: str | None = Field(None, max_length=200)


class LeadFields(BaseModel):
    """The person; flattened onto the lead's columns by `columns()`."""

    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)
    title: str | None = Field(None, max_length=300)
    company: Company | None = None
    linkedin_url: str | None = Field(None, max_length=500)
    phone: str | None = Field(None, max_length=50)
    location: Location | None = None

    def columns(self) -> dict[str, Any]:
        """Lead column → value for the fields sent (company.name → company_name ...)."""
        sent = self.model_dump(exclude_unset=True)
        out = {k: v for k, v in sent.items() if k not in ("company", "location")}
        for prefix, nested in (("company_", sent.get("company")), ("", sent.get("location"))):
            for name, value in (nested or {}).items():
                out[f"{prefix}{name}"] = value
        return out


class LeadCreate(LeadFields):
    external_id: str | None = Field(None, max_length=300)
    campaign_id: uuid.UUID | None = None
    status: LeadStatus = "new"
    priority: LeadPriority = "medium"
    tags: list[str] = Field(default_factory=list, max_length=50)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class LeadUpdate(LeadFields):
    """Only the fields sent change; `status` must follow the flow (409 otherwise)."""

    campaign_id: uuid.UUID | None = None
    status: LeadStatus | None = None
    priority: LeadPriority | None = None
    tags: list[str] | None = Field(None, max_length=50)
    custom_fields: dict[str, Any] | None = None

    def changes(self) -> dict[str, Any]:
        plain = self.model_dump(exclude_unset=True, exclude=set(LeadFields.model_fields))
        return {**plain, **self.columns()}


class QualifyIn(BaseModel):
    score: int = Field(ge=1, le=5)
    criteria: dict[str, Any] = Field(default_factory=dict)
    notes: str | None = Field(None, max_length=10_000)


class AssignIn(BaseModel):
    """Exactly one of `user_id` and `email`: a manager or member of the domain."""

    user_id: uuid.UUID | None = None
    email: str | None = Field(None, max_length=320)

    @model_validator(mode="after")
    def _one(self) -> AssignIn:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("give exactly one of user_id and email")
        return self


class LeadFilterIn(BaseModel):
    """The list filters, as a bulk body's `filter`."""

    status: LeadStatus | None = None
    priority: LeadPriority | None = None
    campaign_id: uuid.UUID | None = None
    assigned_to: uuid.UUID | None = None
    data_source_id: uuid.UUID | None = None
    tag: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: str | None = Field(None, min_length=1, max_length=200)


class BulkUpdateFields(BaseModel):
    status: LeadStatus | None = None
    priority: LeadPriority | None = None
    tags: list[str] | None = Field(None, max_length=50)
    campaign_id: uuid.UUID | None = None


class BulkIn(BaseModel):
    action: Literal["update", "assign", "delete"]
    ids: list[uuid.UUID] | None = Field(None, min_length=1, max_length=1000)
    filter: LeadFilterIn | None = None
    update: BulkUpdateFields | None = None
    assign: AssignIn | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BulkIn:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give exactly one of ids and filter")
        if self.action == "update" and not (self.update and self.update.model_fields_set):
            raise ValueError("action update needs `update` with at least one field")
        if self.action == "assign" and self.assign is None:
            raise ValueError("action assign needs `assign` (user_id or email)")
        return self


class BulkItemOut(BaseModel):
    id: uuid.UUID
    ok: bool
    code: str | None = None
    message: str | None = None


class BulkOut(BaseModel):
    action: str
    succeeded: int
    failed: int
    results: list[BulkItemOut]


class SourceOut(BaseModel):
    data_source_id: uuid.UUID | None
    job_id: uuid.UUID | None
    external_id: str | None


class LeadOut(BaseModel):
    id: uuid.UUID
    domain_id: uuid.UUID
    campaign_id: uuid.UUID | None
    first_name: str | None
    last_name: str | None
    email: str | None
    title: str | None
    company: Company
    linkedin_url: str | None
    phone: str | None
    location: Location
    status: LeadStatus
    priority: LeadPriority
    score: int
    qualification: dict[str, Any] | None
    assigned_to: uuid.UUID | None
    tags: list[str]
    custom_fields: dict[str, Any]
    sources: list[SourceOut]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, lead: Lead, sources: list[LeadSource]) -> LeadOut:
        return cls(
            id=lead.id,
            domain_id=lead.domain_id,
            campaign_id=lead.campaign_id,
            first_name=lead.first_name,
            last_name=lead.last_name,
            email=lead.email,
            title=lead.title,
            company=Company(
                name=lead.company_name,
                domain=lead.company_domain,
                industry=lead.company_industry,
                size=lead.company_size,
            ),
            linkedin_url=lead.linkedin_url,
            phone=lead.phone,
            location=Location(city=lead.city, state=lead.state, country=lead.country),
            status=lead.status,
            priority=lead.priority,
            score=lead.score,
            qualification=lead.qualification,
            assigned_to=lead.assigned_to,
            tags=list(lead.tags),
            custom_fields=lead.custom_fields,
            sources=[
                SourceOut(
                    data_source_id=s.data_source_id, job_id=s.job_id, external_id=s.external_id
                )
                for s in sources
            ],
            created_at=lead.created_at,
            updated_at=lead.updated_at,
        )


#: Leading characters a spreadsheet reads as a formula (OWASP CSV injection), plus tab and CR.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A value as a CSV cell a spreadsheet will not execute: risky text gets a leading `'`."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text
