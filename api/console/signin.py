"""Sign in, sign out and switch domain.

`/console/login?domain=NAME` starts the session in that domain (when the user may act there),
so `dashin up --demo` can print one address that opens the demo's domain with its key.

The sign-in form is protected against login CSRF with a double-submit token: a random value in
a cookie and in the form, which another site can neither read nor set. Attempts are counted by
the API's login rate limiter (`api.ratelimit`), per email and per client address.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api import credentials, ratelimit, session_auth
from api.console.auth import LIMITED_HOME, CsrfUserDep, limited_to_clients
from api.console.templating import page
from api.deps import (
    ClientIp,
    RedisDep,
    SessionDep,
    SettingsDep,
    resolve_principal,
    user_from_session,
)
from api.problems import NotAuthenticated, TooManyRequests
from models import auth_repo, console_sessions, row_security
from runtime.errors import NotFound, PermissionDenied

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only our own pages: an open redirect would make a sign-in link a phishing tool."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/jobs"


def _limits(request: Request) -> ratelimit.LoginLimits:
    """The API's login limits (tests lower them on `app.state`)."""
    limits: ratelimit.LoginLimits = getattr(
        request.app.state, "login_limits", ratelimit.LoginLimits()
    )
    return limits


def _secure(request: Request) -> bool:
    return (
        request.url.scheme == "https"
        or request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"
    )


def _login_form(
    request: Request,
    *,
    next_url: str,
    domain: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    token = request.cookies.get(session_auth.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        None,
        status_code,
        csrf=token,
        next_url=next_url,
        domain=domain,
        error=error,
    )
    response.set_cookie(
        session_auth.LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/console",
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, next: str | None = None, domain: str | None = None
) -> HTMLResponse:
    """`domain` (a name or id): the session starts there, as `--domain` / `Dashin-Domain` do
    for the CLI and the API, so a printed link can open another domain's page (the demo's)."""
    return _login_form(request, next_url=safe_next(next), domain=(domain or "").strip())


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    redis: RedisDep,
    ip: ClientIp,
    csrf_token: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    api_key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    domain: Annotated[str, Form()] = "",
) -> Response:
    """Email + password, or an API key; either way the browser gets a session cookie, in
    `domain` when one is given and the user may act there."""
    expected = request.cookies.get(session_auth.LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        raise PermissionDenied("missing or invalid CSRF token: reload the sign-in page")
    next_url = safe_next(next)
    domain = domain.strip()
    try:
        if api_key.strip():
            with ratelimit.login_attempt(redis, _limits(request), email="(api key)", ip=ip):
                row = credentials.caller_for_api_key(session, api_key.strip())
            user_id, key_id, domain_id, password_hash = (
                row.user_id, row.api_key_id, row.home_domain_id, row.password_hash
            )  # fmt: skip
        else:
            with ratelimit.login_attempt(redis, _limits(request), email=email, ip=ip):
                user = credentials.user_for_password(session, email.strip(), password)
            user_id, key_id, domain_id, password_hash = user.id, None, None, user.password_hash
    except NotAuthenticated as exc:
        return _login_form(
            request, next_url=next_url, domain=domain, error=exc.message, status_code=401
        )
    except TooManyRequests as exc:
        return _login_form(
            request, next_url=next_url, domain=domain, error=exc.message, status_code=429
        )
    caller = row if key_id is not None else auth_repo.user_for_token(session, user_id)
    if caller is not None and limited_to_clients(session, caller):
        next_url = LIMITED_HOME  # the one page open to them
    opened = session_auth.open_session(
        session,
        settings,
        user_id,
        api_key_id=key_id,
        domain_id=domain_id,
        password_hash=password_hash,
    )
    if domain and not _start_in(session, opened.token, domain):
        session_auth.close_session(session, opened.token)
        return _login_form(
            request,
            next_url=next_url,
            domain=domain,
            error=f"you cannot act in the domain {domain}",
            status_code=403,
        )
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        session_auth.COOKIE_NAME,
        opened.token,
        max_age=int(session_auth.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(session_auth.LOGIN_CSRF_COOKIE, path="/console")
    return response


def _start_in(session: Session, token: str, domain: str) -> bool:
    """Move the new session to `domain` by the header switcher's rule; False if not allowed."""
    found = session_auth.live_session(session, token)
    if found is None:
        return False
    try:
        principal = resolve_principal(session, user_from_session(found), domain)
    except (NotFound, NotAuthenticated):
        return False
    console_sessions.switch_domain(session, found.session_id, principal.domain_id)
    return True


@router.post("/logout")
def logout(request: Request, session: SessionDep, _user: CsrfUserDep) -> Response:
    """Delete the session row: the cookie, or any copy of it, opens nothing any more."""
    session_auth.close_session(session, request.cookies.get(session_auth.COOKIE_NAME))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(session_auth.COOKIE_NAME, path="/")
    return response


@router.post("/domain")
def switch_domain(
    request: Request,
    session: SessionDep,
    user: CsrfUserDep,
    domain_id: Annotated[uuid.UUID, Form()],
    next: Annotated[str, Form()] = "",
) -> Response:
    """Act in another domain of the user's (404 for one they are not a member of)."""
    # the membership asked about is the target domain's: look for it as that domain
    row_security.act_for_domain(session, domain_id)
    principal = resolve_principal(session, user.caller, str(domain_id))
    console_sessions.switch_domain(session, user.session_id, principal.domain_id)
    return RedirectResponse(safe_next(next), status_code=303)
