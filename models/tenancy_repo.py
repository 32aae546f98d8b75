"""Queries and rules over tenancy: users, domains, memberships.

Functions flush and never commit: the edge (an API request) owns the transaction. Rules that
need the database to stay true under concurrency (one manager left, unique names) are enforced
here with row locks or unique constraints, not by checks a concurrent request could slip past.

API keys live in `models.api_keys_repo` and single-use tokens (invitations, password resets) in
`models.tokens_repo`; their functions are re-exported here for the callers that reach them as
`tenancy_repo.<name>`.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.api_keys_repo import api_keys_query as api_keys_query
from models.api_keys_repo import create_api_key as create_api_key
from models.api_keys_repo import find_live_api_key as find_live_api_key
from models.api_keys_repo import revoke_api_key as revoke_api_key
from models.api_keys_repo import revoke_user_keys as revoke_user_keys
from models.api_keys_repo import touch_api_key as touch_api_key
from models.base import found
from models.tenancy import Domain, Membership, User
from models.tokens_repo import INVITATION_TTL as INVITATION_TTL
from models.tokens_repo import PASSWORD_RESET_TTL as PASSWORD_RESET_TTL
from models.tokens_repo import consume_invitation as consume_invitation
from models.tokens_repo import consume_password_reset as consume_password_reset
from models.tokens_repo import create_invitation as create_invitation
from models.tokens_repo import create_password_reset as create_password_reset
from models.tokens_repo import find_invitation as find_invitation
from runtime.errors import Conflict, FieldError, NotFound, ValidationFailed

# --- users -----------------------------------------------------------------------------------


def get_user(session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def create_user(
    session: Session,
    *,
    email: str,
    password_hash: str | None,
    signup_domain_id: uuid.UUID | None,
    full_name: str | None = None,
    is_admin: bool = False,
) -> User:
    user = User(
        email=email.lower(),
        password_hash=password_hash,
        signup_domain_id=signup_domain_id,
        full_name=full_name,
        is_admin=is_admin,
    )
    _flush_unique(session, user, f"an account with email {email} already exists")
    return user


def _flush_unique(session: Session, row: object, message: str) -> None:
    """Insert `row` in a savepoint so a unique violation becomes a Conflict, not a dead session."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(message) from exc


@dataclass(frozen=True)
class SignedUp:
    user: User
    domain_id: uuid.UUID
    role: str


#: `dashin up`'s bootstrap lock: any constant shared by every `dashin up` ("DSHB")
BOOTSTRAP_LOCK = 0x44534842


def lock_bootstrap(session: Session) -> None:
    """Serialise `dashin up`s creating the first admin (until the transaction ends)."""
    session.execute(select(func.pg_advisory_xact_lock(BOOTSTRAP_LOCK)))


def active_admins(session: Session) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    """(user, sign-up domain) of every active platform admin."""
    rows = session.execute(
        select(User.id, User.signup_domain_id).where(
            User.is_admin.is_(True), User.is_active.is_(True)
        )
    )
    return [(user_id, domain_id) for user_id, domain_id in rows]


def email_matches_domain(email: str, domain_name: str) -> bool:
    """`bob@acme.com` and `bob@eu.acme.com` may found `acme.com`; `bob@gmail.com` may not."""
    email_domain = email.rsplit("@", 1)[-1].lower()
    return email_domain == domain_name or email_domain.endswith("." + domain_name)


def sign_up(
    session: Session,
    *,
    email: str,
    password_hash: str,
    domain_name: str,
    full_name: str | None,
    invitation_token_hash: str | None,
    allow_any_domain_name: bool,
    release_unverified_after: timedelta | None = None,
) -> SignedUp:
    """Create a user in `domain_name`: founding it as its manager, or joining by invitation.

    An existing domain is joined only with a pending invitation addressed to this email;
    a new domain's name must match the email's domain unless the settings allow any name.
    """
    if get_user_by_email(session, email) is not None:
        raise Conflict(f"an account with email {email} already exists")
    domain = session.scalar(select(Domain).where(Domain.domain_name == domain_name))
    if invitation_token_hash is None and release_unverified_after is not None:
        domain = release_if_unproven(session, domain, release_unverified_after)
    if invitation_token_hash is not None:
        invitation = consume_invitation(session, invitation_token_hash, email)
        if invitation is None or domain is None or invitation.domain_id != domain.id:
            message = "the invitation is invalid, expired, used, or for another email or domain"
            raise ValidationFailed(message, [FieldError("invitation_token", "invalid", message)])
        role = invitation.role
    else:
        if domain is not None:
            raise Conflict(
                f"domain {domain_name} already exists: ask one of its managers for an invitation"
            )
        if not allow_any_domain_name and not email_matches_domain(email, domain_name):
            message = "must be the domain of your email address"
            raise ValidationFailed(message, [FieldError("domain_name", "domain_mismatch", message)])
        domain = create_domain(session, domain_name, created_by=None, unverified=True)
        role = "manager"
    user = create_user(
        session,
        email=email,
        password_hash=password_hash,
        signup_domain_id=domain.id,
        full_name=full_name,
    )
    if invitation_token_hash is None:  # the founder made it
        domain.created_by = user.id
    add_membership(session, domain.id, user.id, role)
    return SignedUp(user=user, domain_id=domain.id, role=role)


def accept_invitation(session: Session, token_hash: str, user: User) -> MembershipView:
    """An existing user joins the domain of a pending invitation addressed to their email.

    Invitations never add anyone by themselves (issue 14, M1): this is the invitee's consent.
    An unknown, expired, used or someone else's token is one 422 on `token`.
    """
    invitation = consume_invitation(session, token_hash, user.email)
    if invitation is None:
        message = "the invitation is invalid, expired, used, or for another email"
        raise ValidationFailed(message, [FieldError("token", "invalid", message)])
    add_membership(session, invitation.domain_id, user.id, invitation.role)
    domain = get_domain(session, invitation.domain_id)
    return MembershipView(domain_id=domain.id, domain_name=domain.domain_name, role=invitation.role)


def set_password(session: Session, user_id: uuid.UUID, password_hash: str) -> None:
    session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


def set_full_name(session: Session, user: User, full_name: str | None) -> None:
    user.full_name = full_name
    session.flush()


def change_email(session: Session, user_id: uuid.UUID, old_email: str, new_email: str) -> bool:
    """Move the account from `old_email` to `new_email`; False when it no longer has
    `old_email` (the change was made already, or another one since). Conflict when the new
    address has an account meanwhile (the unique index decides, so two racing changes get one)."""
    try:
        with session.begin_nested():
            changed = session.scalar(
                update(User)
                .where(User.id == user_id, func.lower(User.email) == old_email.lower())
                .values(email=new_email.lower())
                .returning(User.id)
            )
    except IntegrityError as exc:
        raise Conflict(f"an account with email {new_email} already exists") from exc
    return changed is not None


# --- domains and memberships -------------------------------------------------------------------


def find_domain(session: Session, ref: str) -> Domain | None:
    """A domain by id or by name (`Dashin-Domain` accepts either)."""
    if "\x00" in ref:  # PostgreSQL text cannot hold NUL; no domain has it in its name
        return None
    try:
        return session.get(Domain, uuid.UUID(ref))
    except ValueError:
        return session.scalar(select(Domain).where(Domain.domain_name == ref.strip().lower()))


def get_domain(session: Session, domain_id: uuid.UUID) -> Domain:
    domain = session.get(Domain, domain_id)
    if domain is None:
        raise NotFound(f"domain {domain_id} not found")
    return domain


def create_domain(
    session: Session, domain_name: str, created_by: uuid.UUID | None, *, unverified: bool = False
) -> Domain:
    """A domain; `unverified` (every domain founded through the API) until its owner proves it
    (`api.domain_proof`), else trusted at once (operators, fixtures)."""
    domain = Domain(domain_name=domain_name, created_by=created_by)
    if unverified:
        domain.verification_token = secrets.token_urlsafe(24)
    else:
        domain.verified_at = datetime.now(UTC)
    _flush_unique(session, domain, f"domain {domain_name} already exists")
    return domain


def release_if_unproven(session: Session, domain: Domain | None, after: timedelta) -> Domain | None:
    """Free the name of a domain left unverified for longer than `after` (issue 14, M2): a
    squatter's claim lapses. The tenant and its data stay, renamed to a `.invalid` placeholder
    its managers can rename and prove later; None means the name is free now."""
    if domain is None or domain.verified_at is not None:
        return domain
    if domain.name_claimed_at > datetime.now(UTC) - after:
        return domain
    domain.domain_name = f"released-{domain.id.hex[:16]}.invalid"
    session.flush()
    return None


def mark_domain_verified(session: Session, domain: Domain) -> None:
    domain.verified_at = datetime.now(UTC)
    session.flush()


def membership_role(session: Session, domain_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    return session.scalar(
        select(Membership.role).where(
            Membership.domain_id == domain_id, Membership.user_id == user_id
        )
    )


def add_membership(
    session: Session, domain_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> Membership:
    membership = Membership(domain_id=domain_id, user_id=user_id, role=role)
    _flush_unique(session, membership, "the user is already a member of this domain")
    return membership


@dataclass(frozen=True)
class MembershipView:
    domain_id: uuid.UUID
    domain_name: str
    role: str


def user_memberships(session: Session, user_id: uuid.UUID) -> list[MembershipView]:
    rows = session.execute(
        select(Membership.domain_id, Domain.domain_name, Membership.role)
        .join(Domain, Domain.id == Membership.domain_id)
        .where(Membership.user_id == user_id)
        .order_by(Domain.domain_name)
    )
    return [MembershipView(domain_id=d, domain_name=n, role=r) for d, n, r in rows]


def manages_any_domain(session: Session, user_id: uuid.UUID) -> bool:
    found = session.scalar(
        select(Membership.id)
        .where(Membership.user_id == user_id, Membership.role == "manager")
        .limit(1)
    )
    return found is not None


# --- domain administration -----------------------------------------------------------------------


def domains_query(user_id: uuid.UUID, *, all_domains: bool) -> Select[Domain]:
    """The caller's domains (platform admins: every domain)."""
    query = select(Domain)
    if not all_domains:
        query = query.where(
            Domain.id.in_(select(Membership.domain_id).where(Membership.user_id == user_id))
        )
    return query


def roles_in(
    session: Session, user_id: uuid.UUID, domain_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    rows = session.execute(
        select(Membership.domain_id, Membership.role).where(
            Membership.user_id == user_id, Membership.domain_id.in_(domain_ids)
        )
    )
    return {domain_id: role for domain_id, role in rows}


def rename_domain(session: Session, domain: Domain, domain_name: str) -> None:
    """A new name is a new claim: the domain is unverified again until the new name is proven."""
    if domain.domain_name == domain_name:
        return
    domain.domain_name = domain_name
    domain.verified_at = None
    domain.verification_token = secrets.token_urlsafe(24)
    domain.name_claimed_at = datetime.now(UTC)  # a new claim: its lapse clock starts now
    _flush_unique(session, domain, f"domain {domain_name} already exists")


def delete_domain(session: Session, domain_id: uuid.UUID, by_user: User) -> None:
    """Delete a domain and (by cascade) everything in it; never the caller's sign-up domain."""
    if by_user.signup_domain_id == domain_id:
        raise Conflict("you cannot delete the domain you signed up with")
    session.execute(delete(Domain).where(Domain.id == domain_id))


def members_query(domain_id: uuid.UUID) -> Select[Membership]:
    return select(Membership).where(Membership.domain_id == domain_id)


def users_by_id(session: Session, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}


def get_membership(session: Session, domain_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
    membership = session.scalar(
        select(Membership).where(Membership.domain_id == domain_id, Membership.user_id == user_id)
    )
    return found(membership, "member", user_id)


def _lock_domain(session: Session, domain_id: uuid.UUID) -> None:
    """Serialise membership changes per domain, so two managers demoting each other at once
    cannot both pass the "another manager remains" check."""
    session.execute(select(Domain.id).where(Domain.id == domain_id).with_for_update())


def _ensure_another_manager(session: Session, domain_id: uuid.UUID, user_id: uuid.UUID) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(
            Membership.domain_id == domain_id,
            Membership.role == "manager",
            Membership.user_id != user_id,
        )
    )
    if not others:
        raise Conflict("a domain keeps at least one manager: promote another member first")


#: `change_role(..., client_ids=KEEP)`: leave a viewer's clients as they are
KEEP: list[uuid.UUID] = []


def change_role(
    session: Session,
    domain_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str | None,
    *,
    client_ids: list[uuid.UUID] | None = KEEP,
) -> Membership:
    """Change a member's role (None: keep it) and the clients a viewer is limited to (None:
    not limited). Only a viewer can be limited (422 on `client_ids`); a viewer given another
    role stops being limited. The caller has checked that the ids are the domain's clients."""
    _lock_domain(session, domain_id)
    membership = get_membership(session, domain_id, user_id)
    role = role or membership.role
    if client_ids is not None and client_ids is not KEEP and role != "viewer":
        message = "only a viewer can be limited to clients"
        raise ValidationFailed(message, [FieldError("client_ids", "not_a_viewer", message)])
    if membership.role == "manager" and role != "manager":
        _ensure_another_manager(session, domain_id, user_id)
    membership.role = role
    if role != "viewer":
        membership.client_ids = None
    elif client_ids is not KEEP:
        membership.client_ids = list(dict.fromkeys(client_ids)) if client_ids is not None else None
    session.flush()
    return membership


def remove_member(session: Session, domain_id: uuid.UUID, user_id: uuid.UUID) -> None:
    _lock_domain(session, domain_id)
    membership = get_membership(session, domain_id, user_id)
    if membership.role == "manager":
        _ensure_another_manager(session, domain_id, user_id)
    session.delete(membership)
    revoke_user_keys(session, user_id, domain_id=domain_id)  # re-joining must not revive them
    session.flush()
