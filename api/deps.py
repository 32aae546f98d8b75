"""Request dependencies, as `Annotated` aliases so a route's signature says what it needs.

    SessionDep        a sync Session for this request; committed after the route returns
                      (before the response is sent), rolled back if it raises
    CurrentUser       the authenticated caller (JWT or API key), no domain needed
    CurrentPrincipal  the caller acting in one domain (`Dashin-Domain`, default sign-up domain)
    ReaderDep / WriterDep / ManagerDep        the same, requiring any role / member+ / manager
    StreamAccessDep   ReaderDep for GET streams, which also accept the console's session
                      cookie, with the check an open stream repeats (revocation, membership)
    token_access      the same from a bare token, for the WebSocket (`api.routes.ws`)
    DomainReaderDep / DomainManagerDep        the same for routes naming `{domain_id}` in the path

A domain the caller is not a member of answers 404, exactly like a domain that does not exist,
so tenants cannot probe each other. Platform admins act in any domain; each such request is
logged (`admin.domain_access`) so support access leaves a trail.

Cost per request matters here (every route pays it): the caller is read with their home role in
one query (`models.auth_repo`), and dependencies that do no I/O are `async`, so FastAPI runs
them in the event loop instead of a worker thread (each thread hop costs ~50 µs of CPU).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Annotated, Literal

import redis
import structlog
from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api import security, session_auth
from api.db_threads import in_session
from api.problems import NotAuthenticated
from models import api_keys_repo, auth_repo, clients_repo, row_security
from models.auth_repo import CallerRow, DomainRole
from models.clients_repo import ClientScope
from models.console_sessions import SessionCaller
from models.leads_repo import LeadScope
from runtime.db import get_engine, session_factory, transaction
from runtime.errors import NotFound, PermissionDenied
from runtime.settings import Settings, get_settings

Role = Literal["manager", "member", "viewer", "admin"]
log = structlog.get_logger("api.auth")


async def settings_dep() -> Settings:
    """`get_settings`, cached after the first call: `async` so FastAPI calls it in the event
    loop instead of a worker thread (a thread hop per dependency is a real cost per request)."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dep)]


# --- database and services -------------------------------------------------------------------


@lru_cache(maxsize=8)
def _sessions(database_url: str) -> sessionmaker[Session]:
    return session_factory(get_engine(database_url))


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with transaction(_sessions(settings.require_database_url())) as session:
        yield session


# scope="function": commit before the response goes out, so a 2xx means the rows are durable.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@lru_cache(maxsize=8)
def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


async def get_redis(settings: SettingsDep) -> redis.Redis:
    return redis_client(settings.require_redis_url())


RedisDep = Annotated[redis.Redis, Depends(get_redis)]


async def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientIp = Annotated[str, Depends(client_ip)]


# --- who is calling ----------------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT from `POST /api/v1/auth/login`, or an API key (`dsk_...`).",
)


@dataclass(frozen=True)
class AuthenticatedUser:
    """The caller, before any domain is chosen. API keys pin `key_domain_id`.

    `home_domain_id` / `home_role` are the caller's membership role in their home domain (the
    sign-up domain for a token, the key's domain for a key), read with the user in one query so
    that a request acting there needs no second lookup (`home_role` None: not a member).
    """

    user_id: uuid.UUID
    email: str
    is_admin: bool
    api_key_id: uuid.UUID | None = None
    key_domain_id: uuid.UUID | None = None
    home_domain_id: uuid.UUID | None = None
    home_role: str | None = None
    #: the sign-in session a JWT belongs to (None: an API key, a console session, or a token
    #: issued without one)
    session_id: uuid.UUID | None = None
    #: the clients a viewer is limited to in the home domain (None: not limited)
    home_client_ids: list[uuid.UUID] | None = None


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
    user = auth_repo.user_for_token(session, claims.user_id, claims.session_id) if claims else None
    if (
        claims is None
        or user is None
        or not user.is_active
        or not security.password_version_matches(claims, user.password_hash)
        or user.session_id != claims.session_id  # the token's sign-in session has ended
    ):
        raise NotAuthenticated("invalid or expired access token")
    return replace(user_from_row(user), session_id=claims.session_id)


def _user_from_api_key(session: Session, credential: str) -> AuthenticatedUser:
    user = auth_repo.user_for_api_key(session, security.sha256_hex(credential))
    if user is None or user.api_key_id is None or not user.is_active:
        raise NotAuthenticated("invalid or revoked API key")
    if api_keys_repo.touch_due(user.key_last_used_at):
        api_keys_repo.touch_api_key(session, user.api_key_id)
    return user_from_row(user)


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]


def user_from_session(found: SessionCaller) -> AuthenticatedUser:
    """The caller of a console session; one opened with an API key stays pinned to its domain."""
    return user_from_row(found.caller)


def user_from_row(row: CallerRow) -> AuthenticatedUser:
    """The caller a `CallerRow` reads; one with an API key stays pinned to the key's domain."""
    return AuthenticatedUser(
        user_id=row.user_id,
        email=row.email,
        is_admin=row.is_admin,
        api_key_id=row.api_key_id,
        key_domain_id=row.home_domain_id if row.api_key_id is not None else None,
        home_domain_id=row.home_domain_id,
        home_role=row.home_role,
        home_client_ids=row.home_client_ids,
    )


# --- acting in a domain --------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """The caller acting in one domain with one role (`admin`: a platform admin, not a member).

    `client_ids`: a viewer limited to these clients (None: not limited) reads only their
    campaigns, those campaigns' leads, links and analytics, and nothing else (`LIMITED_PATHS`)."""

    user_id: uuid.UUID
    domain_id: uuid.UUID
    role: Role
    is_admin: bool
    api_key_id: uuid.UUID | None = None
    client_ids: ClientScope = None

    def has_role(self, *roles: Role) -> bool:
        return self.is_admin or self.role in roles


def scope_of(principal: Principal, client_id: uuid.UUID | None = None) -> LeadScope:
    """The leads a principal sees: a member only those of their campaigns or assigned to them,
    a limited viewer those of their clients' campaigns; `client_id` narrows to one client."""
    return LeadScope(
        principal.domain_id,
        principal.user_id,
        restricted=principal.role == "member",
        client_ids=clients_repo.narrowed(principal.client_ids, client_id),
    )


def clients_of(principal: Principal, client_id: uuid.UUID | None = None) -> ClientScope:
    """The clients whose campaigns the principal reads, narrowed by a `?client_id=` filter."""
    return clients_repo.narrowed(principal.client_ids, client_id)


#: What a viewer limited to clients may call (route path prefixes); everything else that acts
#: in a domain answers 403, in this one place rather than route by route: jobs, sources,
#: schedules, job logs, webhooks, audit, members have no client to scope them by. `/events`
#: and the WebSocket (`token_access`) carry their clients' part of the feed (`api.live`).
LIMITED_PATHS = tuple(
    f"/api/v1/{name}" for name in ("campaigns", "leads", "links", "analytics", "clients", "events")
)


LIMITED_REFUSAL = (
    "this account is limited to clients of the domain: it can read campaigns, leads, "
    "links and analytics (and its clients) and follow them live (/events), nothing else"
)


def _within_client_limit(principal: Principal, request: Request) -> Principal:
    if principal.client_ids is None:
        return principal
    path = request.scope["path"]  # as routed: a path matches its route's prefix or no route
    if any(path == allowed or path.startswith(allowed + "/") for allowed in LIMITED_PATHS):
        return principal
    raise PermissionDenied(LIMITED_REFUSAL)


def _known_domain(caller: AuthenticatedUser, domain_ref: str | None) -> DomainRole | None:
    """(domain, role, clients) when the user query already answered it; None: ask the
    database."""
    home = caller.home_domain_id
    if domain_ref:
        if home is None or "\x00" in domain_ref:
            return None
        try:
            named = uuid.UUID(domain_ref)
        except ValueError:  # a domain name
            return None
        return (home, caller.home_role, caller.home_client_ids) if named == home else None
    if caller.key_domain_id is not None:
        return caller.key_domain_id, caller.home_role, caller.home_client_ids
    # The sign-up domain while the user still belongs to it (admins always), else the oldest.
    if home is not None and (caller.is_admin or caller.home_role is not None):
        return home, caller.home_role, caller.home_client_ids
    return None


def resolve_principal(
    session: Session, caller: AuthenticatedUser, domain_ref: str | None
) -> Principal:
    """The caller in the domain named by `domain_ref` (id or name), else their default domain:
    the API key's, or the sign-up domain while still a member, else the oldest membership."""
    found = _known_domain(caller, domain_ref)
    if found is None:
        if domain_ref:
            found = auth_repo.domain_role(session, domain_ref, caller.user_id)
        else:
            found = auth_repo.first_membership(session, caller.user_id)
    domain_id, role, client_ids = found if found is not None else (None, None, None)
    return _principal(caller, domain_ref, domain_id, role, client_ids)


def _principal(
    caller: AuthenticatedUser,
    domain_ref: str | None,
    domain_id: uuid.UUID | None,
    role: str | None,
    client_ids: list[uuid.UUID] | None = None,
) -> Principal:
    # A key is pinned to its domain, except a platform admin's: admins act in every domain
    # (audited), and `dashin up`'s bootstrap key must reach the demo's domain (issue 21).
    pinned = caller.key_domain_id not in (None, domain_id) and not caller.is_admin
    if domain_id is None or pinned:
        raise NotFound(f"domain {domain_ref or '(default)'} not found")
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
        # only a viewer's membership can hold clients (a CHECK); admins are never limited
        client_ids=tuple(client_ids) if client_ids is not None and role == "viewer" else None,
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


async def current_principal(
    request: Request,
    session: SessionDep,
    caller: CurrentUser,
    dashin_domain: Annotated[
        str | None,
        Header(alias="Dashin-Domain", description="Domain id or name; default: sign-up domain."),
    ] = None,
) -> Principal:
    principal = await _resolve_in_loop(session, caller, dashin_domain)
    await _act_for(session, principal)
    return _within_client_limit(_audited(principal, request), request)


async def _act_for(session: Session, principal: Principal) -> None:
    """The request's session acts for the principal's domain from here on: PostgreSQL's
    row-level security stands behind every query's own `WHERE domain_id` (issue 20)."""
    if row_security.enabled():  # a round trip (the session is mid-transaction): off the loop
        await run_in_threadpool(
            row_security.act_for_domain, session, principal.domain_id, principal.client_ids
        )


async def _resolve_in_loop(
    session: Session, caller: AuthenticatedUser, domain_ref: str | None
) -> Principal:
    """`resolve_principal`, in a worker thread only when it has to query the database."""
    found = _known_domain(caller, domain_ref)
    if found is None:
        return await run_in_threadpool(resolve_principal, session, caller, domain_ref)
    return _principal(caller, domain_ref, *found)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _require(principal: Principal, *roles: Role) -> Principal:
    if not principal.has_role(*roles):
        raise PermissionDenied(f"this requires the role {' or '.join(roles)} in the domain")
    return principal


async def require_reader(principal: CurrentPrincipal) -> Principal:
    return principal


async def require_writer(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "manager", "member")


async def require_manager(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "manager")


def _stream_caller(
    session: Session,
    settings: Settings,
    credentials: HTTPAuthorizationCredentials | None,
    cookie: str | None,
    domain_ref: str | None,
) -> Principal:
    """The caller of a GET stream, from bearer credentials or else the console's cookie.

    Sync and self-contained so that an open stream can run it again with the same credentials
    (`StreamAccess.still_allowed`): revoked keys, ended sessions, changed passwords and removed
    memberships all fail it exactly as they fail a new request."""
    if credentials is None or not credentials.credentials:
        found = session_auth.live_session(session, cookie)
        if found is not None:
            ref = domain_ref or (str(found.domain_id) if found.domain_id else None)
            return resolve_principal(session, user_from_session(found), ref)
    return resolve_principal(session, current_user(session, settings, credentials), domain_ref)


@dataclass(frozen=True)
class StreamAccess:
    """A stream's caller, and the check an open stream repeats (issue 14, M3): a stream outlives
    the request that opened it, so it re-derives its principal from the same credentials, in the
    same domain, every few seconds and before every event it sends."""

    principal: Principal
    settings: Settings
    credentials: HTTPAuthorizationCredentials | None
    cookie: str | None

    def still_allowed(self, session: Session) -> bool:
        """Whether the credentials still open this domain with a role that may read it."""
        try:
            now = _stream_caller(
                session, self.settings, self.credentials, self.cookie, str(self.principal.domain_id)
            )
        except (NotAuthenticated, NotFound, PermissionDenied):
            return False
        return (
            now.domain_id == self.principal.domain_id
            and now.has_role("manager", "member", "viewer")
            # a changed limit ends the stream: the client reconnects into its new scope
            and now.client_ids == self.principal.client_ids
        )


async def stream_access(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    dashin_domain: Annotated[
        str | None,
        Header(alias="Dashin-Domain", description="Domain id or name; default: sign-up domain."),
    ] = None,
) -> StreamAccess:
    """Bearer credentials as everywhere, or the console's session cookie (a browser's
    `EventSource` cannot set headers); then the session's chosen domain is the default. Only GET
    streams take this dependency: a cookie alone never changes anything (no CSRF exposure).
    The first check runs in a short session of its own: a stream holds no pooled connection."""
    cookie = request.cookies.get(session_auth.COOKIE_NAME)
    principal = await run_in_threadpool(
        in_session,
        lambda session: _stream_caller(session, settings, credentials, cookie, dashin_domain),
    )
    principal = _within_client_limit(_audited(principal, request), request)
    return StreamAccess(principal, settings, credentials, cookie)


def token_access(
    session: Session, settings: Settings, token: str, domain_ref: str | None, path: str
) -> StreamAccess:
    """A stream's caller from a bare bearer token (a WebSocket's header or first message), with
    the same repeated check as `stream_access`; never a cookie (a browser sends it on a
    cross-site WebSocket too). Raises like a request would: 401, or 404 for the domain."""
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    principal = _stream_caller(session, settings, credentials, None, domain_ref)
    if principal.role == "admin":
        log.info(
            "admin.domain_access",
            user_id=str(principal.user_id),
            domain_id=str(principal.domain_id),
            method="WEBSOCKET",
            path=path,
        )
    return StreamAccess(principal, settings, credentials, None)


ReaderDep = Annotated[Principal, Depends(require_reader)]
StreamAccessDep = Annotated[StreamAccess, Depends(stream_access)]
WriterDep = Annotated[Principal, Depends(require_writer)]
ManagerDep = Annotated[Principal, Depends(require_manager)]


async def path_domain_reader(
    domain_id: uuid.UUID, request: Request, session: SessionDep, caller: CurrentUser
) -> Principal:
    principal = await _resolve_in_loop(session, caller, str(domain_id))
    await _act_for(session, principal)
    return _within_client_limit(_audited(principal, request), request)


async def path_domain_manager(
    principal: Annotated[Principal, Depends(path_domain_reader)],
) -> Principal:
    return _require(principal, "manager")


DomainReaderDep = Annotated[Principal, Depends(path_domain_reader)]
DomainManagerDep = Annotated[Principal, Depends(path_domain_manager)]
