"""Who may get an account by signing in with an identity provider for the first time.

Only two ways, so an identity provider that vouches for an email never opens a tenant by
itself: an invitation addressed to that email (its token presented with the sign-in, the
invitee's consent as in `tenancy_repo.accept_invitation`), or a *verified* domain whose managers
turned single sign-on joining on (`domains.sso_join_role`) and whose name the email's domain is
(or is under). Functions flush and never commit: the edge owns the transaction.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.tenancy import Domain, User
from models.tenancy_repo import add_membership, consume_invitation, create_user


def join_domain_for(session: Session, email: str) -> Domain | None:
    """The most specific verified domain with SSO joining on that `email` belongs to:
    `bo@eu.acme.com` matches `eu.acme.com`, else `acme.com`."""
    labels = email.rsplit("@", 1)[-1].lower().split(".")
    names = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    candidates = session.scalars(
        select(Domain).where(
            Domain.domain_name.in_(names),
            Domain.sso_join_role.is_not(None),
            Domain.verified_at.is_not(None),
        )
    ).all()
    return max(candidates, key=lambda d: len(d.domain_name), default=None)


def create_invited_user(
    session: Session, invitation_token_hash: str, email: str, full_name: str | None
) -> User | None:
    """The new user of an invitation addressed to `email` (consumed); None when the token is
    invalid, expired, used or for another email."""
    invitation = consume_invitation(session, invitation_token_hash, email)
    if invitation is None:
        return None
    return _create(session, email, full_name, invitation.domain_id, invitation.role)


def create_joining_user(
    session: Session, domain: Domain, email: str, full_name: str | None
) -> User:
    """The new user of a domain with SSO joining on, with the domain's join role."""
    assert domain.sso_join_role is not None
    return _create(session, email, full_name, domain.id, domain.sso_join_role)


def _create(
    session: Session, email: str, full_name: str | None, domain_id: uuid.UUID, role: str
) -> User:
    user = create_user(
        session, email=email, password_hash=None, signup_domain_id=domain_id, full_name=full_name
    )
    add_membership(session, domain_id, user.id, role)
    return user
