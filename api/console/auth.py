"""Who is using the console: the session cookie read into the same `Principal` the API uses.

    ConsoleUserDep   the signed-in user acting in their chosen domain (else a redirect to
                     /console/login, or `HX-Redirect` for an htmx request)
    CsrfUserDep      the same, for a POST: 403 unless the form field `csrf_token` (or the
                     `X-CSRF-Token` header) carries the session's token

Roles and domain scoping are `api.deps`' (`resolve_principal`, `Principal.has_role`), so a page
shows an action exactly when the API would allow it. The header's domain switcher offers the
user's memberships (a key session: only the key's domain; a platform admin: every domain).
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api import session_auth
from api.deps import (
    AuthenticatedUser,
    Principal,
    SessionDep,
    SettingsDep,
    require_manager,
    require_writer,
    resolve_principal,
    user_from_row,
    user_from_session,
)
from api.problems import NotAuthenticated
from models import row_security, tenancy_repo
from models.auth_repo import CallerRow
from models.console_sessions import SessionCaller
from models.tenancy import Domain
from models.tenancy_repo import MembershipView
from runtime.errors import NotFound, PermissionDenied

#: a platform admin's domain switcher lists at most this many domains (by name)
ADMIN_DOMAINS = 200


class SignInRequired(Exception):
    """No live session: the console answers with a redirect to its sign-in page."""


@dataclass(frozen=True)
class ConsoleUser:
    principal: Principal
    caller: AuthenticatedUser
    email: str
    session_id: uuid.UUID
    csrf: str
    #: signed in with an API key: pinned to its domain, no domain switcher
    via_api_key: bool
    memberships: list[MembershipView]

    @property
    def can_write(self) -> bool:
        """Members and managers run jobs (the API's `WriterDep`)."""
        return self.principal.has_role("manager", "member")

    @property
    def limited(self) -> bool:
        """A viewer limited to clients: the leads page only (`LIMITED_PAGES`)."""
        return self.principal.client_ids is not None

    @property
    def can_switch(self) -> bool:
        return len(self.memberships) > 1

    @property
    def can_manage(self) -> bool:
        return self.principal.has_role("manager")

    @property
    def domain_name(self) -> str:
        return next(
            (m.domain_name for m in self.memberships if m.domain_id == self.principal.domain_id),
            str(self.principal.domain_id),
        )


def _principal(session: Session, found: SessionCaller, caller: AuthenticatedUser) -> Principal:
    if found.domain_id is not None:
        try:
            return resolve_principal(session, caller, str(found.domain_id))
        except NotFound:  # no longer a member there: fall back to the default domain
            pass
    try:
        return resolve_principal(session, caller, None)
    except NotFound as exc:  # a member of no domain at all
        raise SignInRequired() from exc


def _switchable(
    session: Session, caller: AuthenticatedUser, principal: Principal
) -> list[MembershipView]:
    """The domains the header offers: the user's memberships; a key session stays in its
    domain; a platform admin (password or key) may act in any domain, as in the API."""
    mine = tenancy_repo.user_memberships(session, principal.user_id)
    if caller.is_admin:
        roles = {m.domain_id: m.role for m in mine}
        query = tenancy_repo.domains_query(caller.user_id, all_domains=True)
        domains = session.scalars(query.order_by(Domain.domain_name).limit(ADMIN_DOMAINS))
        return [MembershipView(d.id, d.domain_name, roles.get(d.id, "admin")) for d in domains]
    if caller.api_key_id is not None:
        return [m for m in mine if m.domain_id == principal.domain_id]
    return mine


#: the pages a viewer limited to clients may open: their clients' leads (scoped as in the
#: API), signing out and switching domain; the others show jobs, sources and schedules, which
#: have no client to scope them by
LIMITED_PAGES = ("/console/leads", "/console/logout", "/console/domain")
LIMITED_HOME = "/console/leads"
LIMITED_MESSAGE = (
    "this account is limited to clients of its domain: the console shows it their leads "
    "(/console/leads); campaigns, links and analytics are in the API (docs/api.md, Clients)."
)


def limited_to_clients(session: Session, row: CallerRow) -> bool:
    """Whether a sign-in with this caller would act, in its default domain, as a viewer
    limited to clients (a member of no domain is not: the console turns them away anyway)."""
    try:
        return resolve_principal(session, user_from_row(row), None).client_ids is not None
    except (NotFound, NotAuthenticated):
        return False


def _open_to_limited(path: str) -> bool:
    return any(path == page or path.startswith(page + "/") for page in LIMITED_PAGES)


def console_user(request: Request, session: SessionDep, settings: SettingsDep) -> ConsoleUser:
    token = request.cookies.get(session_auth.COOKIE_NAME)
    found = session_auth.live_session(session, token)
    if found is None or token is None:
        raise SignInRequired()
    caller = user_from_session(found)
    principal = _principal(session, found, caller)
    if principal.client_ids is not None and not _open_to_limited(request.url.path):
        raise PermissionDenied(LIMITED_MESSAGE)
    via_key = found.caller.api_key_id is not None
    memberships = _switchable(session, caller, principal)
    # the page's own reads act for its domain: row-level security stands behind them
    row_security.act_for_domain(session, principal.domain_id, principal.client_ids)
    return ConsoleUser(
        principal=principal,
        caller=caller,
        email=found.caller.email,
        session_id=found.session_id,
        csrf=session_auth.csrf_for(settings, token),
        via_api_key=via_key,
        memberships=memberships,
    )


ConsoleUserDep = Annotated[ConsoleUser, Depends(console_user)]


async def csrf_checked(request: Request, user: ConsoleUserDep) -> ConsoleUser:
    """The signed-in user, once the request proves it comes from one of our pages."""
    offered = request.headers.get(session_auth.CSRF_HEADER)
    if offered is None:
        form = await request.form()  # starlette caches it: Form() parameters still work
        value = form.get(session_auth.CSRF_FIELD)
        offered = value if isinstance(value, str) else None
    if not offered or not hmac.compare_digest(user.csrf, offered):
        raise PermissionDenied("missing or invalid CSRF token: reload the page and try again")
    return user


CsrfUserDep = Annotated[ConsoleUser, Depends(csrf_checked)]


async def writer_checked(user: CsrfUserDep) -> ConsoleUser:
    """A member or manager (the API's `WriterDep` rule), on a CSRF-checked request."""
    await require_writer(user.principal)
    return user


async def manager_checked(user: CsrfUserDep) -> ConsoleUser:
    await require_manager(user.principal)
    return user


WriterUserDep = Annotated[ConsoleUser, Depends(writer_checked)]
ManagerUserDep = Annotated[ConsoleUser, Depends(manager_checked)]
