"""Bodies of campaigns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas import examples as ex
from api.schemas.common import FROM_ORM, NO_NUL_PATTERN, JsonObject, Name, example

CampaignStatus = Literal["active", "paused", "completed"]
Source = Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL_PATTERN)]
Objective = Annotated[str, StringConstraints(max_length=10_000, pattern=NO_NUL_PATTERN)]


class CampaignCreate(BaseModel):
    model_config = example(
        {
            "name": "Q3 CFO outreach",
            "source": "linkedin",
            "objective": "book 40 demos",
            "targeting_criteria": {"titles": ["CFO"], "countries": ["DE"]},
            "status": "active",
        }
    )
    name: Name
    source: Source | None = None
    objective: Objective | None = None
    targeting_criteria: JsonObject = Field(default_factory=dict)
    status: CampaignStatus = "active"
    client_id: uuid.UUID | None = Field(None, description="The client it is for (`/clients`).")


class CampaignUpdate(BaseModel):
    """Only the fields sent change; the slug stays (links and exports refer to it)."""

    model_config = example({"status": "paused"})

    name: Name | None = None
    source: Source | None = None
    objective: Objective | None = None
    targeting_criteria: JsonObject | None = None
    status: CampaignStatus | None = None
    client_id: uuid.UUID | None = Field(None, description="Another client; null: none.")


class CampaignOut(BaseModel):
    model_config = ConfigDict(
        **FROM_ORM,
        **example(
            {
                "id": ex.CAMPAIGN_ID,
                "domain_id": ex.DOMAIN_ID,
                "name": "Q3 CFO outreach",
                "slug": "q3-cfo-outreach",
                "source": "linkedin",
                "objective": "book 40 demos",
                "targeting_criteria": {"titles": ["CFO"], "countries": ["DE"]},
                "status": "active",
                "client_id": ex.CLIENT_ID,
                "created_by": ex.USER_ID,
                "created_at": ex.CREATED_AT,
                "updated_at": ex.UPDATED_AT,
            }
        ),
    )

    id: uuid.UUID
    domain_id: uuid.UUID
    name: str
    slug: str
    source: str | None
    objective: str | None
    targeting_criteria: dict[str, Any]
    status: CampaignStatus
    client_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
