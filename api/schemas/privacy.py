"""Schemas of the suppression list, erasure and the domain's data policy (issue 19)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas import examples as ex
from api.schemas.common import NO_NUL_PATTERN, example

MAX_ENTRIES = 10_000
Entry = Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL_PATTERN)]
SuppressionKind = Literal["email", "email_domain", "linkedin_url", "external_id"]
Days = Annotated[int | None, Field(ge=1, le=36_500)]


class SuppressionsIn(BaseModel):
    model_config = example(
        {
            "emails": ["Jane.Doe@Example.com"],
            "email_domains": ["competitor.example"],
            "linkedin_urls": ["linkedin.com/in/jane-doe"],
        }
    )

    emails: list[Entry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    email_domains: list[Entry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    linkedin_urls: list[Entry] = Field(default_factory=list, max_length=MAX_ENTRIES)


_INVALID_EXAMPLE = {
    "field": "emails",
    "position": 2,
    "message": "not an email address: jane.doe(at)example.com",
}


class InvalidEntry(BaseModel):
    """An entry that normalises to nothing (not an email, a domain or a profile URL): skipped."""

    model_config = example(_INVALID_EXAMPLE)

    field: str
    #: 0-based position in the list (JSON), or the 1-based CSV row (header = row 1)
    position: int
    message: str


class SuppressionsOut(BaseModel):
    model_config = example(
        {
            "added": 2,
            "already": 1,
            "leads_flagged": 1,
            "leads_erased": 0,
            "invalid": [_INVALID_EXAMPLE],
        }
    )

    added: int
    already: int
    #: existing leads tagged `suppressed` (policy `flag`) or erased (policy `erase`)
    leads_flagged: int
    leads_erased: int
    invalid: list[InvalidEntry]


class SuppressionOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        **example(
            {
                "id": "b8d0f2a4-3c5e-4a7b-9d1f-4e6a8c0e2f91",
                "kind": "email",
                "key_hash": "5d41402abc4b2a76b9719d911017c592ae8f6c1b7e2d3f4a5b6c7d8e9f0a1b2c",
                "origin": "api",
                "created_by": ex.USER_ID,
                "created_at": ex.UPDATED_AT,
            }
        ),
    )

    id: uuid.UUID
    kind: SuppressionKind
    #: SHA-256 of the normalised key; the value itself is not stored
    key_hash: str
    origin: Literal["api", "import", "erasure"]
    created_by: uuid.UUID | None
    created_at: datetime


class EraseIn(BaseModel):
    model_config = example({"email": "jane.doe@example.com"})

    email: Annotated[str | None, Field(max_length=320, pattern=NO_NUL_PATTERN)] = None
    lead_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_of(self) -> EraseIn:
        if (self.email is None) == (self.lead_id is None):
            raise ValueError("send exactly one of email or lead_id")
        return self


class ErasureOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        **example(
            {
                "id": "c9e1a3b5-4d6f-4b8c-8e0a-5f7b9d1f3a02",
                "erased_by": ex.USER_ID,
                "trigger": "request",
                "leads": 1,
                "rows": 6,
                "tables": {"leads": 1, "lead_sources": 2, "lead_keys": 3},
                "created_at": ex.UPDATED_AT,
            }
        ),
    )

    id: uuid.UUID
    erased_by: uuid.UUID | None = None
    trigger: Literal["request", "suppression"] = "request"
    leads: int
    rows: int
    #: rows removed per table
    tables: dict[str, int]
    created_at: datetime | None = None


class DataPolicyOut(BaseModel):
    model_config = example(
        {
            "suppression_action": "erase",
            "retain_job_logs_days": 30,
            "retain_row_errors_days": 90,
            "retain_raw_payloads_days": 180,
            "retain_uploads_days": 30,
            "retain_finished_jobs_days": None,
        }
    )

    suppression_action: Literal["flag", "erase"]
    retain_job_logs_days: int | None
    retain_row_errors_days: int | None
    retain_raw_payloads_days: int | None
    retain_uploads_days: int | None
    retain_finished_jobs_days: int | None


class DataPolicyIn(BaseModel):
    """Fields sent are changed; a retention of `null` keeps that data forever."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"suppression_action": "erase", "retain_job_logs_days": 30}]
        },
    )

    suppression_action: Literal["flag", "erase"] | None = None
    retain_job_logs_days: Days = None
    retain_row_errors_days: Days = None
    retain_raw_payloads_days: Days = None
    retain_uploads_days: Days = None
    retain_finished_jobs_days: Days = None
