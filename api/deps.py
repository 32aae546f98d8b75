"""Request dependencies, as `Annotated` aliases so a route's signature says what it needs.

    SessionDep        a sync Session for this request; committed after the route returns
                      (before the response is sent), rolled back if it raises
    CurrentUser       the authenticated caller (JWT or API key), no domain needed
    CurrentPrincipal  the caller acting in one domain (`Dashin-Domain`, default sign-up domain)
    ReaderDep / WriterDep / ManagerDep        the same, requiring any role / member+ / manager
    DomainReaderDep / DomainManagerDep        the same for routes naming `{domain_id}` in the path

A domain the caller is not a member of answers 404, exactly like a domain that does not exist,
so tenants cannot probe each other. Platform admins act in any domain; each such request is
logged (`admin.domain_access`) so support access leaves a trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal

import redis
import structlog
from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from api import security
from api.mailer import Mailer
from api.problems import NotAuthenticated
from models import tenancy_repo
from runtime.db import get_engine, session_factory
from runtime.errors import NotFound, PermissionDenied
from runtime.settings import Settings, get_settings

Role = Literal["manager", "member", "viewer", "admin"]
log = structlog.get_logger("api.auth")

SettingsDep = Annotated[Settings, Depends(get_settings)]


# --- database and services -------------------------------------------------------------------


@lru_cache(maxsize=8)
def _sessions(database_url: str) -> sessionmaker[Session]:
    return session_factory(get_engine(database_url))


def get_session(settings: SettingsDep) -> Iterator[Session]:
    session = _sessions(settings.require_database_url())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit before the response goes out, so a 2xx means the rows are durable.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@lru_cache(maxsize=8)
def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def get_redis(settings: SettingsDep) -> redis.Redis:
    return redis_client(settings.require_redis_url())


RedisDep = Annotated[redis.Redis, Depends(get_redis)]


def get_mailer(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


MailerDep = Annotated[Mailer, Depends(get_mailer)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientIp = Annotated[str, Depends(client_ip)]


# --- who is calling ----------------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT from `POST /api/v1/auth/login`, or an API key (`dsk_...`).",
)


@dataclass(frozen=True)
class AuthenticatedUser:
    """The caller, before any domain is chosen. API keys pin `key_domain_id`."""

    user_id: uuid.UUID
    email: str
    is_admin: bool
    api_key_id: uuid.UUID | None = None
    key_domain_id: uuid.UUID | None = None


def current_user(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> AuthenticatedUser:
    if credentials is None or not credentials.credentials:
        raise NotAuthenticated("missing bearer credentials")
    credential = credentials.credentials
    if security.looks_like_api_key(credential):
        return _user_from_api_key(session, credential)
    claims = security.verify_access_token(settings, credential)
    user = tenancy_repo.get_user(session, claims.user_id) if claims else None
    if (
        claims is None
        or user is None
        or not user.is_active
        or not security.password_version_matches(claims, user.password_hash)
    ):
        raise NotAuthenticated("invalid or expired access token")
    return AuthenticatedUser(user_id=user.id, email=user.email, is_admin=user.is_admin)


def _user_from_api_key(session: Session, credential: str) -> AuthenticatedUser:
    key = tenancy_repo.find_live_api_key(session, security.sha256_hex(credential))
    user = tenancy_repo.get_user(session, key.user_id) if key else None
    if key is None or user is None or not user.is_active:
        raise NotAuthenticated("invalid or revoked API key")
    tenancy_repo.touch_api_key(session, key.id)
    return AuthenticatedUser(
        user_id=user.id,
        email=user.email,
        is_admin=user.is_admin,
        api_key_id=key.id,
        key_domain_id=key.domain_id,
    )


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]


# --- acting in a domain --------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """The caller acting in one domain with one role (`admin`: a platform admin, not a member)."""

    user_id: uuid.UUID
    domain_id: uuid.UUID
    role: Role
    is_admin: bool
    api_key_id: uuid.UUID | None = None

    def has_role(self, *roles: Role) -> bool:
        return self.is_admin or self.role in roles


def resolve_principal(
    session: Session, caller: AuthenticatedUser, domain_ref: str | None
) -> Principal:
    """The caller in the domain named by `domain_ref` (id or name), else their default domain."""
    if domain_ref:
        domain = tenancy_repo.find_domain(session, domain_ref)
        domain_id = domain.id if domain else None
    elif caller.key_domain_id is not None:
        domain_id = caller.key_domain_id
    else:
        user = tenancy_repo.get_user(session, caller.user_id)
        domain_id = tenancy_repo.default_domain_id(session, user) if user else None
    if domain_id is None or (caller.key_domain_id not in (None, domain_id)):
        raise NotFound(f"domain {domain_ref or '(default)'} not found")
    role = tenancy_repo.membership_role(session, domain_id, caller.user_id)
    if role is None:
        if not caller.is_admin:
            if caller.api_key_id is not None:
                raise NotAuthenticated("the API key's owner is no longer a member of its domain")
            raise NotFound(f"domain {domain_ref or '(default)'} not found")
        role = "admin"
    return Principal(
        user_id=caller.user_id,
        domain_id=domain_id,
        role=role,  # type: ignore[arg-type]  # the CHECK constraint keeps it one of ROLES
        is_admin=caller.is_admin,
        api_key_id=caller.api_key_id,
    )


def _audited(principal: Principal, request: Request) -> Principal:
    """Leave a trail of every request a platform admin makes in a domain they are not in."""
    if principal.role == "admin":
        log.info(
            "admin.domain_access",
            user_id=str(principal.user_id),
            domain_id=str(principal.domain_id),
            method=request.method,
            path=request.url.path,
        )
    return principal


def current_principal(
    request: Request,
    session: SessionDep,
    caller: CurrentUser,
    dashin_domain: Annotated[
        str | None,
        Header(alias="Dashin-Domain", description="Domain id or name; default: sign-up domain."),
    ] = None,
) -> Principal:
    return _audited(resolve_principal(session, caller, dashin_domain), request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _require(principal: Principal, *roles: Role) -> Principal:
    if not principal.has_role(*roles):
        raise PermissionDenied(f"this requires the role {' or '.join(roles)} in the domain")
    return principal


def require_reader(principal: CurrentPrincipal) -> Principal:
    return principal


def require_writer(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "manager", "member")


def require_manager(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "manager")


ReaderDep = Annotated[Principal, Depends(require_reader)]
WriterDep = Annotated[Principal, Depends(require_writer)]
ManagerDep = Annotated[Principal, Depends(require_manager)]


def path_domain_reader(
    domain_id: uuid.UUID, request: Request, session: SessionDep, caller: CurrentUser
) -> Principal:
    return _audited(resolve_principal(session, caller, str(domain_id)), request)


def path_domain_manager(principal: Annotated[Principal, Depends(path_domain_reader)]) -> Principal:
    return _require(principal, "manager")


DomainReaderDep = Annotated[Principal, Depends(path_domain_reader)]
DomainManagerDep = Annotated[Principal, Depends(path_domain_manager)]
