"""Bodies of clients (the agency's customers a campaign is run for)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, StringConstraints

from api.schemas import examples as ex
from api.schemas.common import FROM_ORM, NO_NUL_PATTERN, Name, example

Contact = Annotated[str, StringConstraints(max_length=1_000, pattern=NO_NUL_PATTERN)]
Notes = Annotated[str, StringConstraints(max_length=10_000, pattern=NO_NUL_PATTERN)]
#: the `?client_id=` filter of campaigns, leads, links and analytics
ClientFilter = Annotated[
    uuid.UUID | None, Query(description="Only what belongs to this client's campaigns")
]


class ClientCreate(BaseModel):
    model_config = example(
        {"name": "Globex", "contact": "Hank Scorpio <hank@globex.example>", "notes": "since 2026"}
    )
    name: Name
    contact: Contact | None = None
    notes: Notes | None = None


class ClientUpdate(BaseModel):
    """Only the fields sent change; `name` cannot be null, `contact` and `notes` can."""

    model_config = example({"contact": "Frank Grimes <frank@globex.example>"})
    name: Name | None = None
    contact: Contact | None = None
    notes: Notes | None = None


class ClientOut(BaseModel):
    model_config = ConfigDict(
        **FROM_ORM,
        **example(
            {
                "id": ex.CLIENT_ID,
                "domain_id": ex.DOMAIN_ID,
                "name": "Globex",
                "contact": "Hank Scorpio <hank@globex.example>",
                "notes": "since 2026",
                "created_at": ex.CREATED_AT,
                "updated_at": ex.UPDATED_AT,
            }
        ),
    )

    id: uuid.UUID
    domain_id: uuid.UUID
    name: str
    contact: str | None
    #: the agency's own notes: null for a viewer limited to clients
    notes: str | None
    created_at: datetime
    updated_at: datetime
