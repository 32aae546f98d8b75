"""Wire shape of the audit log (`GET /audit`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class AuditEntryOut(BaseModel):
    """One audited change: field names only, never their values."""

    model_config = ConfigDict(from_attributes=True)

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
