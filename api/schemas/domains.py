"""Bodies of domains, their members and invitations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import examples as ex
from api.schemas.common import FROM_ORM, DomainName, Email, MemberRole, example

SubscriptionStatus = Literal["trial", "active", "inactive"]


class DomainCreate(BaseModel):
    model_config = example({"domain_name": "acme-agency.com"})
    domain_name: DomainName


class DomainUpdate(BaseModel):
    model_config = example({"domain_name": "acme-agency.io"})
    domain_name: DomainName | None = None
    subscription_status: SubscriptionStatus | None = Field(
        None, description="Platform admins only."
    )
    sso_join_role: Literal["member", "viewer"] | None = Field(
        None,
        description="Single sign-on joining (verified domains only): someone whose verified "
        "email is at this domain signing in with a configured identity provider for the first "
        "time joins with this role. null turns it off (the default: invitations only).",
    )


class DomainOut(BaseModel):
    model_config = ConfigDict(
        **FROM_ORM,
        **example(
            {
                "id": ex.DOMAIN_ID,
                "domain_name": ex.DOMAIN_NAME,
                "subscription_status": "active",
                "verified_at": "2026-11-03T10:02:55Z",
                "sso_join_role": "member",
                "created_at": ex.CREATED_AT,
                "role": "manager",
            }
        ),
    )

    id: uuid.UUID
    domain_name: str
    subscription_status: SubscriptionStatus
    verified_at: datetime | None = Field(
        description="When ownership was proven; null: unverified (no paid providers)."
    )
    sso_join_role: MemberRole | None = Field(
        None, description="The role single sign-on joining gives; null: invitations only."
    )
    created_at: datetime
    role: MemberRole | Literal["admin"] | None = Field(
        None, description="The caller's role in this domain."
    )


class VerificationMailRequest(BaseModel):
    model_config = example({"email": "postmaster@acme.com"})
    email: Email = Field(description="An address at the domain (or one of its subdomains).")


class VerificationCheck(BaseModel):
    model_config = example({"mail_token": "the token from the proof mail"})
    mail_token: str | None = Field(
        None, min_length=1, max_length=200, description="From the proof mail; omit to check DNS."
    )


class DomainVerification(BaseModel):
    """How to prove ownership: publish this TXT record, then `POST` the verification."""

    model_config = example(
        {
            "status": "unverified",
            "verified_at": None,
            "record_type": "TXT",
            "record_name": "_dashin-verify.acme.com",
            "record_value": "dashin-verify=the-token-this-domain-was-given",
        },
        {
            "status": "verified",
            "verified_at": "2026-11-03T10:02:55Z",
            "record_type": "TXT",
            "record_name": "_dashin-verify.acme.com",
            "record_value": None,
        },
    )

    status: Literal["verified", "unverified"]
    verified_at: datetime | None
    record_type: Literal["TXT"] = "TXT"
    record_name: str = Field(description="`_dashin-verify.<domain>`")
    record_value: str | None = Field(description="`dashin-verify=<token>`; null once verified.")


class MemberOut(BaseModel):
    model_config = example(
        {
            "user_id": ex.MEMBER_ID,
            "email": "grace@acme.com",
            "full_name": "Grace Hopper",
            "role": "viewer",
            "client_ids": [ex.CLIENT_ID],
            "created_at": "2026-11-04T08:30:12Z",
        }
    )

    user_id: uuid.UUID
    email: str
    full_name: str | None
    role: MemberRole
    client_ids: list[uuid.UUID] | None = Field(
        None, description="The clients a viewer is limited to; null: not limited."
    )
    created_at: datetime


class MemberUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = example(
        {"role": "viewer", "client_ids": ["6f1c1f9e-1b7e-4c1a-9d3c-0d6c2f7e9a10"]}
    )
    role: MemberRole | None = None
    client_ids: list[uuid.UUID] | None = Field(
        None,
        max_length=1_000,
        description="Limit a viewer to these clients (their campaigns, leads, links and "
        "analytics only); null: not limited. 422 for any role but viewer.",
    )


class InvitationCreate(BaseModel):
    model_config = example({"email": "grace@acme.com", "role": "member"})
    email: Email
    role: MemberRole = "member"


_INVITATION_EXAMPLE = {
    "id": "f4b6d8e0-9a1c-4e3f-8b5d-7c9e1f3a5b89",
    "email": "grace@acme.com",
    "role": "member",
    "expires_at": "2026-11-27T16:45:31Z",
}


class InvitationOut(BaseModel):
    model_config = ConfigDict(**FROM_ORM, **example(_INVITATION_EXAMPLE))

    id: uuid.UUID
    email: str
    role: MemberRole
    expires_at: datetime


class InvitationResult(BaseModel):
    """A pending invitation: the invitee accepts it (`POST /auth/invitation/accept` when they
    have an account, `POST /auth/signup` with `invitation_token` when not). The answer is the
    same whether or not the email has an account."""

    model_config = example(
        {
            "status": "invited",
            "invitation": _INVITATION_EXAMPLE,
            "token": "x3V0q...the token from the invitation mail",
        }
    )

    status: Literal["invited"] = "invited"
    invitation: InvitationOut
    token: str = Field(
        description="The invitation token (also mailed). Shown only in this response."
    )
