"""Bodies of sign-up, login, password reset, `/me` and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import examples as ex
from api.schemas.common import FROM_ORM, DomainName, Email, MemberRole, Name, Password, example

if TYPE_CHECKING:
    from api.sign_in import TokenPair


_TOKENS_EXAMPLE = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9...a signed JWT, not a real one",
    "token_type": "bearer",
    "expires_in": 3600,
    "refresh_token": "drt_Qm9vZ2xlIGlzIG5vdCBhIHJlYWwgdG9rZW4gaGVyZQ",
}
_USER_EXAMPLE = {
    "id": ex.USER_ID,
    "email": ex.USER_EMAIL,
    "full_name": "Ada Lovelace",
    "is_admin": False,
    "signup_domain_id": ex.DOMAIN_ID,
    "created_at": ex.CREATED_AT,
}
_MEMBERSHIP_EXAMPLE = {"domain_id": ex.DOMAIN_ID, "domain_name": ex.DOMAIN_NAME, "role": "manager"}
_API_KEY_EXAMPLE = {
    "id": ex.API_KEY_ID,
    "name": "CRM sync",
    "prefix": "dsk_7Hq2xW9p",
    "domain_id": ex.DOMAIN_ID,
    "service": False,
    "created_at": ex.CREATED_AT,
    "last_used_at": ex.UPDATED_AT,
}


class SignupRequest(BaseModel):
    model_config = example(
        {
            "email": "ada@acme.com",
            "password": "correct horse battery staple",
            "domain_name": "acme.com",
            "full_name": "Ada Lovelace",
        }
    )
    email: Email
    password: Password
    domain_name: DomainName
    full_name: Name | None = None
    invitation_token: str | None = Field(
        None, max_length=200, description="Required to join a domain that already exists."
    )


class LoginRequest(BaseModel):
    model_config = example({"email": "ada@acme.com", "password": "correct horse battery staple"})
    email: Email
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    model_config = example(_TOKENS_EXAMPLE)

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(
        description="Opaque; `POST /auth/refresh` trades it for a new pair (once: each use "
        "returns a new one). `POST /auth/logout` ends its session."
    )

    @classmethod
    def of(cls, tokens: TokenPair) -> TokenResponse:
        """A sign-in's pair as the API answers it (the session's id stays on the server)."""
        return cls.model_validate(tokens, from_attributes=True)


class PasswordResetRequest(BaseModel):
    model_config = example({"email": "ada@acme.com"})
    email: Email


class PasswordResetConfirm(BaseModel):
    model_config = example(
        {"token": "prt_3q2d9Xk0c1VbW8aZ", "new_password": "a new long passphrase"}
    )
    token: str = Field(min_length=1, max_length=200)
    new_password: Password


class Accepted(BaseModel):
    model_config = example(
        {
            "status": "accepted",
            "detail": "if the email has an account, a reset token was sent to it",
        }
    )

    status: Literal["accepted"] = "accepted"
    detail: str


class PendingInvitation(BaseModel):
    """An invitation a link points to; accept it with its token: `POST /auth/invitation/accept`
    signed in, or `POST /auth/signup` as `invitation_token` without an account."""

    model_config = example(
        {
            "domain_name": ex.DOMAIN_NAME,
            "email": "grace@acme.com",
            "role": "member",
            "expires_at": "2026-11-27T16:45:31Z",
        }
    )

    domain_name: str
    email: str
    role: MemberRole
    expires_at: datetime


class InvitationAccept(BaseModel):
    model_config = example({"token": "x3V0q...the token from the invitation mail"})
    token: str = Field(min_length=1, max_length=200, description="The invitation token.")


class MembershipOut(BaseModel):
    model_config = ConfigDict(**FROM_ORM, **example(_MEMBERSHIP_EXAMPLE))

    domain_id: uuid.UUID
    domain_name: str
    role: MemberRole


class UserOut(BaseModel):
    model_config = ConfigDict(**FROM_ORM, **example(_USER_EXAMPLE))

    id: uuid.UUID
    email: str
    full_name: str | None
    is_admin: bool
    signup_domain_id: uuid.UUID | None
    created_at: datetime


class MeResponse(UserOut):
    model_config = example({**_USER_EXAMPLE, "memberships": [_MEMBERSHIP_EXAMPLE]})

    memberships: list[MembershipOut]


class MeUpdate(BaseModel):
    """The fields of your own account you may change directly (email and password have
    their own confirmed flows)."""

    # A field sent here that cannot change this way (`email`, `password`) is refused by name
    # rather than quietly ignored.
    model_config = ConfigDict(extra="forbid", **example({"full_name": "Ada King"}))
    full_name: Name | None = Field(
        None, description="Your name as shown to your team; null clears it."
    )


class PasswordChange(BaseModel):
    model_config = example(
        {
            "current_password": "correct horse battery staple",
            "new_password": "a new long passphrase",
        }
    )
    current_password: str = Field(min_length=1, max_length=256)
    new_password: Password


class EmailChangeRequest(BaseModel):
    model_config = example(
        {"new_email": "ada@newmail.example", "current_password": "correct horse battery staple"}
    )
    new_email: Email
    current_password: str = Field(min_length=1, max_length=256)


class EmailChangeConfirm(BaseModel):
    model_config = example({"token": "eyJhbGciOi...the token from the confirmation mail"})
    token: str = Field(
        min_length=1, max_length=2000, description="The token mailed to the new address."
    )


class SignupResponse(TokenResponse):
    model_config = example(
        {**_TOKENS_EXAMPLE, "user": _USER_EXAMPLE, "domain_id": ex.DOMAIN_ID, "role": "manager"}
    )

    user: UserOut
    domain_id: uuid.UUID
    role: MemberRole


class ApiKeyCreate(BaseModel):
    model_config = example({"name": "CRM sync"})
    name: Name
    service: bool = Field(
        False,
        description="A service key (managers only) survives its owner's password reset; "
        "other keys are revoked then.",
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(**FROM_ORM, **example(_API_KEY_EXAMPLE))

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it in a list.")
    domain_id: uuid.UUID
    service: bool = Field(description="Survives the owner's password reset.")
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    model_config = example(
        {
            **_API_KEY_EXAMPLE,
            "last_used_at": None,
            "key": "dsk_7Hq2xW9p...the rest of the key, shown once",
        }
    )

    key: str = Field(description="The key itself. Shown only in this response: store it now.")
