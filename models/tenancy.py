"""Tenancy and identity: domains (tenants), users, memberships with roles, API keys, tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, domain_fk, enum_check, updated_at, uuid_pk

SUBSCRIPTION_STATUSES = ("trial", "active", "inactive")
#: what adding a suppression does to the domain's existing leads it matches
SUPPRESSION_ACTIONS = ("flag", "erase")
#: days each kind of data is kept (None: forever), and the defaults a new domain starts with
RETENTION_DEFAULTS: dict[str, int | None] = {
    "retain_job_logs_days": 90,
    "retain_row_errors_days": 90,
    "retain_raw_payloads_days": 90,
    "retain_uploads_days": 30,
    "retain_finished_jobs_days": 365,
}
ROLES = ("manager", "member", "viewer")


class Domain(Base):
    __tablename__ = "domains"
    __table_args__ = (
        enum_check("subscription_status", SUBSCRIPTION_STATUSES),
        enum_check("suppression_action", SUPPRESSION_ACTIONS),
        enum_check("sso_join_role", ROLES),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    domain_name: Mapped[str] = mapped_column(String(253), unique=True)
    subscription_status: Mapped[str] = mapped_column(String(16), server_default="trial")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", use_alter=True), index=True
    )
    #: ownership proven (DNS TXT `_dashin-verify.<name>`); None: unverified, limited
    verified_at: Mapped[datetime | None]
    #: the value the TXT record must hold (`dashin-verify=<token>`); public, not a secret
    verification_token: Mapped[str | None] = mapped_column(String(64))
    #: data policy (issue 19): existing leads a new suppression matches are flagged or erased
    suppression_action: Mapped[str] = mapped_column(String(8), server_default="flag")
    #: a verified domain's single sign-on: a person whose verified email is at this domain and
    #: who signs in through a configured identity provider for the first time joins with this
    #: role; None: only by invitation
    sso_join_role: Mapped[str | None] = mapped_column(String(16))
    retain_job_logs_days: Mapped[int | None] = mapped_column(server_default=text("90"))
    retain_row_errors_days: Mapped[int | None] = mapped_column(server_default=text("90"))
    retain_raw_payloads_days: Mapped[int | None] = mapped_column(server_default=text("90"))
    retain_uploads_days: Mapped[int | None] = mapped_column(server_default=text("30"))
    retain_finished_jobs_days: Mapped[int | None] = mapped_column(server_default=text("365"))
    #: when the current name was founded or renamed to: an unproven claim lapses from here
    name_claimed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_lower", func.lower(text("email")), unique=True),)

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default="false")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    signup_domain_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("domains.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("domain_id", "user_id"),
        enum_check("role", ROLES),
        # only a viewer can be limited to clients: writers' scope is their campaigns
        CheckConstraint("client_ids IS NULL OR role = 'viewer'", name="client_ids_viewer_only"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    domain_id: Mapped[uuid.UUID] = domain_fk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    #: a viewer limited to these clients (their campaigns, leads, links, analytics); None: not
    #: limited. No foreign key can check array elements: deleting a client removes its id here.
    client_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class ApiKey(Base):
    """A script's credential: owned by a user, scoped to one domain, stored as a SHA-256 hash."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    domain_id: Mapped[uuid.UUID] = domain_fk()
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    #: an integration's key: survives its owner's password reset (others are revoked then)
    service: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (enum_check("role", ROLES),)

    id: Mapped[uuid.UUID] = uuid_pk()
    domain_id: Mapped[uuid.UUID] = domain_fk()
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class PasswordResetToken(Base):
    __tablename__ = "password_reset_tokens"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
