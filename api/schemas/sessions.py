"""Bodies of identity-provider sign-in, refresh, logout and `/me/sessions`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

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


class SessionOut(BaseModel):
    """A signed-in device, without any secret: recognise it, and end it if it is not yours."""

    model_config = FROM_ORM

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
    items: list[SessionOut]
    next_cursor: str | None = Field(None, description="Always null: the list is never paged.")
