"""Bodies of identity-provider sign-in, refresh, logout and `/me/sessions`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import examples as ex
from api.schemas.common import FROM_ORM, example

_REFRESH_EXAMPLE = {"refresh_token": "drt_Qm9vZ2xlIGlzIG5vdCBhIHJlYWwgdG9rZW4gaGVyZQ"}


class OidcSignIn(BaseModel):
    model_config = example(
        {
            "id_token": "eyJhbGciOiJSUzI1NiIsImtpZCI6Imsx...the ID token from the provider",
            "invitation_token": "x3V0q...the token from the invitation mail",
        }
    )
    id_token: str = Field(
        min_length=1,
        max_length=16384,
        description="An ID token (or Clerk session token) from a configured issuer.",
    )
    invitation_token: str | None = Field(
        None,
        max_length=200,
        description="Creates the account through this invitation when the email has none yet; "
        "ignored for an existing account.",
    )


class RefreshRequest(BaseModel):
    model_config = example(_REFRESH_EXAMPLE)
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutRequest(BaseModel):
    model_config = example(_REFRESH_EXAMPLE)
    refresh_token: str = Field(
        min_length=1, max_length=200, description="The refresh token of the session to end."
    )


_SESSION_EXAMPLE = {
    "id": "e5a7c9e1-0f2b-4d4e-9a6c-8b0d2f4a6c13",
    "method": "password",
    "issuer": None,
    "created_at": ex.CREATED_AT,
    "last_used_at": ex.UPDATED_AT,
    "expires_at": "2026-12-20T16:45:31Z",
    "user_agent": "Firefox on Linux",
    "ip_prefix": "203.0.113.0/24",
    "current": True,
}


class SessionOut(BaseModel):
    """A signed-in device, without any secret: recognise it, and end it if it is not yours."""

    model_config = ConfigDict(**FROM_ORM, **example(_SESSION_EXAMPLE))

    id: uuid.UUID
    method: Literal["password", "oidc"]
    issuer: str | None = Field(description="The identity provider, for an `oidc` session.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="When it last signed in or refreshed.")
    expires_at: datetime = Field(description="When it ends unless refreshed before.")
    user_agent: str | None = Field(description="Browser and system family, e.g. Firefox on Linux.")
    ip_prefix: str | None = Field(description="The client address cut to a /24 or /48 prefix.")
    current: bool = Field(False, description="The session of the token making this request.")


class SessionList(BaseModel):
    model_config = example({"items": [_SESSION_EXAMPLE], "next_cursor": None})

    items: list[SessionOut]
    next_cursor: str | None = Field(None, description="Always null: the list is never paged.")
