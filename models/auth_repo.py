"""The reads that authenticate an API request: one round trip each.

Every request resolves its caller before doing its own work, so these are the most frequent
queries of the API (benchmark 6 of issue 9: they were half of a small request). Each returns
the user together with their role in their *home* domain (the sign-up domain for a token, the
key's domain for an API key), the domain a request acts in unless it names another, so such a
request needs no second lookup. Functions never write; the edge owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from models.auth_sessions import AuthSession
from models.tenancy import ApiKey, Domain, Membership, User


@dataclass(frozen=True)
class CallerRow:
    """A user as authentication needs it, with their membership role in `home_domain_id`."""

    user_id: uuid.UUID
    email: str
    is_admin: bool
    is_active: bool
    password_hash: str | None
    home_domain_id: uuid.UUID | None
    home_role: str | None  # None: not (or no longer) a member of the home domain
    api_key_id: uuid.UUID | None = None
    key_last_used_at: datetime | None = None
    #: for a token naming a sign-in session: that session, when it is still live (None: ended)
    session_id: uuid.UUID | None = None
    #: a viewer limited to these clients in the home domain (None: not limited), read in the
    #: same row as the role so that a limited viewer costs no extra query
    home_client_ids: list[uuid.UUID] | None = None


# Built once: constructing a select costs about as much CPU as executing a cached one.
_USER_COLUMNS = (User.id, User.email, User.is_admin, User.is_active, User.password_hash)

_BY_TOKEN = (
    select(*_USER_COLUMNS, User.signup_domain_id, Membership.role, Membership.client_ids)
    .outerjoin(
        Membership,
        and_(Membership.domain_id == User.signup_domain_id, Membership.user_id == User.id),
    )
    .where(User.id == bindparam("user_id"))
)

# The same, with the token's sign-in session when it is live: logout is checked in the one query.
_BY_TOKEN_SESSION = (
    select(
        *_USER_COLUMNS,
        User.signup_domain_id,
        Membership.role,
        AuthSession.id,
        Membership.client_ids,
    )
    .outerjoin(
        Membership,
        and_(Membership.domain_id == User.signup_domain_id, Membership.user_id == User.id),
    )
    .outerjoin(
        AuthSession,
        and_(
            AuthSession.id == bindparam("session_id"),
            AuthSession.user_id == User.id,
            AuthSession.revoked_at.is_(None),
        ),
    )
    .where(User.id == bindparam("user_id"))
)

_BY_API_KEY = (
    select(
        *_USER_COLUMNS,
        ApiKey.domain_id,
        Membership.role,
        ApiKey.id,
        ApiKey.last_used_at,
        Membership.client_ids,
    )
    .join(User, User.id == ApiKey.user_id)
    .outerjoin(
        Membership,
        and_(Membership.domain_id == ApiKey.domain_id, Membership.user_id == ApiKey.user_id),
    )
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))
)

_DOMAIN_ROLE = select(Domain.id, Membership.role, Membership.client_ids).outerjoin(
    Membership,
    and_(Membership.domain_id == Domain.id, Membership.user_id == bindparam("user_id")),
)
_DOMAIN_ROLE_BY_ID = _DOMAIN_ROLE.where(Domain.id == bindparam("ref_id"))
_DOMAIN_ROLE_BY_NAME = _DOMAIN_ROLE.where(Domain.domain_name == bindparam("ref_name"))

_FIRST_MEMBERSHIP = (
    select(Membership.domain_id, Membership.role, Membership.client_ids)
    .where(Membership.user_id == bindparam("user_id"))
    .order_by(Membership.created_at, Membership.id)
    .limit(1)
)


def user_for_token(
    session: Session, user_id: uuid.UUID, session_id: uuid.UUID | None = None
) -> CallerRow | None:
    """The user a token names, with their role in their sign-up domain, and (when the token
    names a sign-in session) that session's id if it is still live."""
    if session_id is None:
        row = session.execute(_BY_TOKEN, {"user_id": user_id}).first()
        return CallerRow(*row[:7], home_client_ids=row[7]) if row is not None else None
    found = session.execute(
        _BY_TOKEN_SESSION, {"user_id": user_id, "session_id": session_id}
    ).first()
    if found is None:
        return None
    return CallerRow(*found[:7], session_id=found[7], home_client_ids=found[8])


def user_for_api_key(session: Session, key_hash: str) -> CallerRow | None:
    """The owner of a live (unrevoked) key, with their role in the key's domain."""
    row = session.execute(_BY_API_KEY, {"key_hash": key_hash}).first()
    return CallerRow(*row[:9], home_client_ids=row[9]) if row is not None else None


#: a domain, the user's role there (None: not a member) and the clients a viewer is limited to
DomainRole = tuple[uuid.UUID, str | None, list[uuid.UUID] | None]


def domain_role(session: Session, ref: str, user_id: uuid.UUID) -> DomainRole | None:
    """The domain named by `ref` (id or name, as `Dashin-Domain` accepts), the user's role
    there (None: not a member) and their clients; None when no such domain exists."""
    if "\x00" in ref:  # PostgreSQL text cannot hold NUL; no domain has it in its name
        return None
    params: dict[str, object] = {"user_id": user_id}
    try:
        query, params["ref_id"] = _DOMAIN_ROLE_BY_ID, uuid.UUID(ref)
    except ValueError:
        query, params["ref_name"] = _DOMAIN_ROLE_BY_NAME, ref.strip().lower()
    row = session.execute(query, params).first()
    return (row[0], row[1], row[2]) if row is not None else None


def first_membership(session: Session, user_id: uuid.UUID) -> DomainRole | None:
    """The user's oldest membership (domain, role, clients): their default when not in their
    sign-up domain any more."""
    row = session.execute(_FIRST_MEMBERSHIP, {"user_id": user_id}).first()
    return (row[0], row[1], row[2]) if row is not None else None
