"""Wire shape of the audit log (`GET /audit`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from api.schemas import examples as ex
from api.schemas.common import example


class AuditEntryOut(BaseModel):
    """One audited change: field names only, never their values."""

    model_config = ConfigDict(
        from_attributes=True,
        **example(
            {
                "id": "e3a5c7d9-8f0b-4c2d-9e4f-6a8b0c2d4e78",
                "domain_id": ex.DOMAIN_ID,
                "actor_user_id": ex.USER_ID,
                "actor_api_key_id": ex.API_KEY_ID,
                "actor_role": "manager",
                "actor_is_admin": False,
                "entity_type": "data_source",
                "entity_id": ex.SOURCE_ID,
                "action": "update",
                "fields": ["name", "config.api_key"],
                "count": 1,
                "request_id": "4f9d2c1b7a8e4e0c9b3a5d6f7e8a9b0c",
                "created_at": ex.UPDATED_AT,
            }
        ),
    )

    id: uuid.UUID
    domain_id: uuid.UUID | None
    actor_user_id: uuid.UUID | None
    #: the API key the actor used, if any
    actor_api_key_id: uuid.UUID | None
    #: manager, member, viewer; `admin` for a platform admin acting as support
    actor_role: str | None
    actor_is_admin: bool
    entity_type: str
    entity_id: uuid.UUID | None
    action: str
    #: names of the fields the request set (`config.api_key`), never their values
    fields: list[str]
    #: rows the request changed (bulk requests); 1 otherwise
    count: int
    #: the request's `X-Request-ID`
    request_id: str | None
    created_at: datetime
