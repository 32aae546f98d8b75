"""Bodies of leads (ARCHITECTURE §9 wire shape: nested `company` and `location`, `sources`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, Field, TypeAdapter, model_validator
from typing_extensions import TypedDict

from api.schemas import examples as ex
from api.schemas.common import JsonObject, example, from_row
from models.leads import Lead
from models.leads_repo import Provenance
from records import FIELD_MAX_LEN, LEAD_FIELDS

#: a tag is a short label: the GIN index on `leads.tags` cannot hold a 1 MB one (issue 14, M4)
Tag = Annotated[str, Field(max_length=100)]
LeadStatus = Literal["new", "contacted", "responded", "qualified", "rejected", "converted"]
LeadPriority = Literal["low", "medium", "high"]


_COMPANY_EXAMPLE = {
    "name": "Navy Labs",
    "domain": "navy.example",
    "industry": "Research",
    "size": "51-200",
}
_LOCATION_EXAMPLE = {"city": "Arlington", "state": "Virginia", "country": "United States"}
_SOURCE_EXAMPLE = {"data_source_id": ex.SOURCE_ID, "job_id": ex.JOB_ID, "external_id": "5e1f0c2a"}


class Company(BaseModel):
    model_config = example(_COMPANY_EXAMPLE)

    name: str | None = Field(None, max_length=FIELD_MAX_LEN["company_name"])
    domain: str | None = Field(None, max_length=FIELD_MAX_LEN["company_domain"])
    industry: str | None = Field(None, max_length=FIELD_MAX_LEN["company_industry"])
    size: str | None = Field(None, max_length=FIELD_MAX_LEN["company_size"])


class Location(BaseModel):
    model_config = example(_LOCATION_EXAMPLE)

    city: str | None = Field(None, max_length=FIELD_MAX_LEN["city"])
    state: str | None = Field(None, max_length=FIELD_MAX_LEN["state"])
    country: str | None = Field(None, max_length=FIELD_MAX_LEN["country"])


class LeadFields(BaseModel):
    """The person; flattened onto the lead's columns by `columns()`."""

    first_name: str | None = Field(None, max_length=FIELD_MAX_LEN["first_name"])
    last_name: str | None = Field(None, max_length=FIELD_MAX_LEN["last_name"])
    email: str | None = Field(None, max_length=FIELD_MAX_LEN["email"])
    title: str | None = Field(None, max_length=FIELD_MAX_LEN["title"])
    company: Company | None = None
    linkedin_url: str | None = Field(None, max_length=FIELD_MAX_LEN["linkedin_url"])
    phone: str | None = Field(None, max_length=FIELD_MAX_LEN["phone"])
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
    model_config = example(
        {
            "first_name": "Grace",
            "last_name": "Hopper",
            "email": "grace@navy.example",
            "title": "CFO",
            "company": {"name": "Navy Labs", "domain": "navy.example"},
            "status": "new",
            "priority": "high",
            "tags": ["conference"],
        }
    )
    external_id: str | None = Field(None, max_length=FIELD_MAX_LEN["external_id"])
    campaign_id: uuid.UUID | None = None
    status: LeadStatus = "new"
    priority: LeadPriority = "medium"
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    custom_fields: JsonObject = Field(default_factory=dict)


class LeadUpdate(LeadFields):
    """Only the fields sent change; `status` must follow the flow (409 otherwise)."""

    model_config = example({"status": "contacted", "priority": "medium"})

    campaign_id: uuid.UUID | None = None
    status: LeadStatus | None = None
    priority: LeadPriority | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    custom_fields: JsonObject | None = None

    def changes(self) -> dict[str, Any]:
        plain = self.model_dump(exclude_unset=True, exclude=set(LeadFields.model_fields))
        return {**plain, **self.columns()}


class QualifyIn(BaseModel):
    model_config = example(
        {
            "score": 4,
            "criteria": {"budget": True, "authority": True},
            "notes": "Budget approved for Q1",
        }
    )
    score: int = Field(ge=1, le=5)
    criteria: JsonObject = Field(default_factory=dict)
    notes: str | None = Field(None, max_length=10_000)


class AssignIn(BaseModel):
    """Exactly one of `user_id` and `email`: a manager or member of the domain."""

    model_config = example({"email": "sales@acme.com"})

    user_id: uuid.UUID | None = None
    email: str | None = Field(None, max_length=FIELD_MAX_LEN["email"])

    @model_validator(mode="after")
    def _one(self) -> AssignIn:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("give exactly one of user_id and email")
        return self


class LeadFilterIn(BaseModel):
    """The list filters, as a bulk body's `filter`."""

    model_config = example(
        {"status": "new", "tag": "conference", "created_from": "2026-11-01T00:00:00Z"}
    )

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
    model_config = example({"status": "contacted", "priority": "high"})

    status: LeadStatus | None = None
    priority: LeadPriority | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    campaign_id: uuid.UUID | None = None


class BulkIn(BaseModel):
    model_config = example(
        {
            "action": "update",
            "ids": [ex.LEAD_ID],
            "update": {"status": "contacted"},
        }
    )
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


_BULK_DONE = {"id": ex.LEAD_ID, "ok": True, "code": None, "message": None}
_BULK_NOT_FOUND = {
    "id": ex.OTHER_LEAD_ID,
    "ok": False,
    "code": "not_found",
    "message": "lead not found",
}


class BulkItemOut(BaseModel):
    model_config = example(_BULK_DONE, _BULK_NOT_FOUND)

    id: uuid.UUID
    ok: bool
    code: str | None = None
    message: str | None = None


class BulkOut(BaseModel):
    model_config = example(
        {"action": "update", "succeeded": 1, "failed": 1, "results": [_BULK_DONE, _BULK_NOT_FOUND]}
    )

    action: str
    succeeded: int
    failed: int
    results: list[BulkItemOut]


class SourceOut(BaseModel):
    model_config = example(_SOURCE_EXAMPLE)

    data_source_id: uuid.UUID | None
    job_id: uuid.UUID | None
    external_id: str | None


class SourceRecordOut(SourceOut):
    """One provider record behind a lead: which source and job brought it, when, and the record
    as the provider sent it (`raw`, null when the connector keeps none). Credentials are never
    part of it: they travel in request headers or parameters, never in a provider's record."""

    model_config = example(
        {
            **_SOURCE_EXAMPLE,
            "raw": {
                "id": "5e1f0c2a",
                "first_name": "Grace",
                "last_name": "Hopper",
                "title": "CFO",
                "email": "grace@navy.example",
                "organization": {"name": "Navy Labs", "primary_domain": "navy.example"},
            },
            "created_at": ex.JOB_FINISHED_AT,
        }
    )

    raw: dict[str, Any] | None
    created_at: datetime


class LeadOut(BaseModel):
    model_config = example(
        {
            "id": ex.LEAD_ID,
            "domain_id": ex.DOMAIN_ID,
            "campaign_id": ex.CAMPAIGN_ID,
            "first_name": "Grace",
            "last_name": "Hopper",
            "email": "grace@navy.example",
            "title": "CFO",
            "company": _COMPANY_EXAMPLE,
            "linkedin_url": "https://www.linkedin.com/in/grace-hopper-example",
            "phone": "+1 555 0100",
            "location": _LOCATION_EXAMPLE,
            "status": "qualified",
            "priority": "high",
            "score": 4,
            "qualification": {
                "score": 4,
                "criteria": {"budget": True, "authority": True},
                "notes": "Budget approved for Q1",
                "qualified_by": ex.USER_ID,
                "qualified_at": ex.UPDATED_AT,
            },
            "assigned_to": ex.USER_ID,
            "tags": ["conference"],
            "custom_fields": {"crm_id": "0061x00000Abc"},
            "sources": [_SOURCE_EXAMPLE],
            "created_at": ex.JOB_FINISHED_AT,
            "updated_at": ex.UPDATED_AT,
        }
    )

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
    def of(cls, lead: Lead, sources: list[Provenance]) -> LeadOut:
        return from_row(
            cls,
            lead,
            company=Company(
                name=lead.company_name,
                domain=lead.company_domain,
                industry=lead.company_industry,
                size=lead.company_size,
            ),
            location=Location(city=lead.city, state=lead.state, country=lead.country),
            tags=list(lead.tags),
            sources=[SourceOut(**source) for source in sources],
        )


# --- the list page, as plain dicts -----------------------------------------------------------
# `GET /leads` is the hottest list: building 50 `LeadOut` models (with nested `Company`,
# `Location` and `SourceOut`) cost more CPU than the query. The page is instead built as dicts
# from plain rows and dumped by a serializer of the same shape, without validation (the rows
# come from constrained columns). The bytes equal `LeadOut`'s (tests/api/test_leads_list.py).


class CompanyItem(TypedDict):
    name: str | None
    domain: str | None
    industry: str | None
    size: str | None


class LocationItem(TypedDict):
    city: str | None
    state: str | None
    country: str | None


class LeadItem(TypedDict):
    """`LeadOut`, field for field, in its order."""

    id: uuid.UUID
    domain_id: uuid.UUID
    campaign_id: uuid.UUID | None
    first_name: str | None
    last_name: str | None
    email: str | None
    title: str | None
    company: CompanyItem
    linkedin_url: str | None
    phone: str | None
    location: LocationItem
    status: LeadStatus
    priority: LeadPriority
    score: int
    qualification: dict[str, Any] | None
    assigned_to: uuid.UUID | None
    tags: list[str]
    custom_fields: dict[str, Any]
    sources: list[Provenance]
    created_at: datetime
    updated_at: datetime


class LeadsPage(TypedDict):
    """`Page[LeadOut]`: `total` only when counted."""

    items: list[LeadItem]
    next_cursor: str | None
    total: NotRequired[int]


#: The lead columns a list row carries, in the order `lead_items` unpacks them.
ITEM_COLUMNS = (
    "id",
    "domain_id",
    "campaign_id",
    *LEAD_FIELDS,  # first_name ... company_name ... phone, city, state, country
    "status",
    "priority",
    "score",
    "qualification",
    "assigned_to",
    "tags",
    "custom_fields",
    "created_at",
    "updated_at",
)

LEADS_PAGE_JSON = TypeAdapter(LeadsPage)


def lead_items(
    rows: Iterable[Sequence[Any]], sources: Mapping[uuid.UUID, list[Provenance]]
) -> list[LeadItem]:
    """Rows of `ITEM_COLUMNS` as list items, with each lead's provenance."""
    items: list[LeadItem] = []
    for (
        id_,
        domain_id,
        campaign_id,
        first_name,
        last_name,
        email,
        title,
        company_name,
        company_domain,
        company_industry,
        company_size,
        linkedin_url,
        phone,
        city,
        state,
        country,
        status,
        priority,
        score,
        qualification,
        assigned_to,
        tags,
        custom_fields,
        created_at,
        updated_at,
    ) in rows:
        items.append(
            {
                "id": id_,
                "domain_id": domain_id,
                "campaign_id": campaign_id,
                "first_name": first_name,
                "last_name": last_name,
                "email": email,
                "title": title,
                "company": {
                    "name": company_name,
                    "domain": company_domain,
                    "industry": company_industry,
                    "size": company_size,
                },
                "linkedin_url": linkedin_url,
                "phone": phone,
                "location": {"city": city, "state": state, "country": country},
                "status": status,
                "priority": priority,
                "score": score,
                "qualification": qualification,
                "assigned_to": assigned_to,
                "tags": tags,
                "custom_fields": custom_fields,
                "sources": sources[id_],
                "created_at": created_at,
                "updated_at": updated_at,
            }
        )
    return items
