"""Sign-in sessions: identity-provider sign-in, refresh, logout, and `/me/sessions`.

An identity provider's ID token is *exchanged* (`POST /auth/oidc`) for our own token pair
rather than accepted on every request: every request keeps one credential format and one cheap
check (no signature over a provider key, no key fetch on the request path), providers' very
different token lifetimes (a Clerk session token lives 60 s) stop mattering, and the session
that opens is listed and revoked like a password one.

Refresh tokens rotate (`models.auth_sessions`): presenting one that was already used ends its
whole session, whoever presents it.
"""

from __future__ import annotations

import uuid

import structlog
from fastapi import APIRouter, Request, status
from sqlalchemy.orm import Session

from api import security, sign_in
from api.deps import AuthenticatedUser, ClientIp, CurrentUser, SessionDep, SettingsDep
from api.oidc import OidcVerifier, VerifiedIdentity
from api.problems import NotAuthenticated, problem_responses
from api.schemas.auth import TokenResponse
from api.schemas.sessions import (
    LogoutRequest,
    OidcSignIn,
    RefreshRequest,
    SessionList,
    SessionOut,
)
from models import auth_sessions, sso_repo, tenancy_repo
from models.tenancy import User
from runtime.errors import FieldError, NotFound, PermissionDenied, ValidationFailed

router = APIRouter(tags=["auth"])
log = structlog.get_logger("api.auth")


def _verifier(request: Request) -> OidcVerifier:
    verifier: OidcVerifier = request.app.state.oidc
    return verifier


@router.post("/auth/oidc", responses=problem_responses(401, 403, 409, 422, 503))
def oidc_sign_in(
    body: OidcSignIn, request: Request, session: SessionDep, settings: SettingsDep, ip: ClientIp
) -> TokenResponse:
    """Exchange an identity provider's ID token for an access token and a refresh token.

    The token must come from an issuer in `DASHIN_OIDC_ISSUERS`, for its audience, unexpired,
    signed RS256/ES256 by the issuer's published key (401 otherwise). Its verified `email` is
    the account: an existing one signs in; a new one is created only through a pending
    invitation to that email (`invitation_token`) or a verified domain with single sign-on
    joining on (`PATCH /domains/{id}` `sso_join_role`), else 403. 503 while the provider's keys
    cannot be fetched."""
    identity = _verifier(request).verify(settings, body.id_token)
    user = tenancy_repo.get_user_by_email(session, identity.email)
    created = user is None
    if user is None:
        user = _new_user(session, identity, body.invitation_token)
    if not user.is_active:
        raise NotAuthenticated("this account is deactivated")
    tokens = sign_in.open_session(
        session,
        settings,
        user,
        sign_in.Client.of(request, ip),
        method="oidc",
        issuer=identity.issuer,
    )
    log.info("auth.oidc_sign_in", user_id=str(user.id), issuer=identity.issuer, created=created)
    return TokenResponse.of(tokens)


def _new_user(session: Session, identity: VerifiedIdentity, invitation_token: str | None) -> User:
    if invitation_token:
        user = sso_repo.create_invited_user(
            session, security.sha256_hex(invitation_token), identity.email, identity.name
        )
        if user is None:
            message = "the invitation is invalid, expired, used, or for another email"
            raise ValidationFailed(message, [FieldError("invitation_token", "invalid", message)])
        return user
    domain = sso_repo.join_domain_for(session, identity.email)
    if domain is None:
        raise PermissionDenied(
            f"no Dashin account uses {identity.email}: ask a manager of your team for an "
            "invitation and sign in with its token (invitation_token), or ask them to turn on "
            "single sign-on joining for your company's verified domain"
        )
    return sso_repo.create_joining_user(session, domain, identity.email, identity.name)


@router.post("/auth/refresh", responses=problem_responses(401, 422))
def refresh(
    body: RefreshRequest, request: Request, session: SessionDep, settings: SettingsDep, ip: ClientIp
) -> TokenResponse:
    """Trade a refresh token for a new access token and a new refresh token (rotation).

    The token presented is spent. Presenting a spent one again means it was copied: the whole
    session ends (its access tokens too) and the answer is 401; sign in again."""
    new = security.new_refresh_token()
    client = sign_in.Client.of(request, ip)
    rotated = auth_sessions.rotate(
        session,
        security.sha256_hex(body.refresh_token),
        new.hash,
        sign_in.refresh_ttl(settings),
        user_agent=client.user_agent,
        ip_prefix=client.ip_prefix,
    )
    if rotated.reused:
        session.commit()  # the revocation stands although this request fails
        log.warning("auth.refresh_reused", ip_prefix=client.ip_prefix)
        raise NotAuthenticated(
            "this refresh token was already used, so its session has been ended: sign in again"
        )
    row = rotated.session
    user = tenancy_repo.get_user(session, row.user_id) if row is not None else None
    if (
        row is None
        or user is None
        or not user.is_active
        or row.password_version != security.password_version(user.password_hash)
    ):
        raise NotAuthenticated("invalid, expired or revoked refresh token")
    access = security.issue_access_token(settings, user.id, user.password_hash, row.id)
    return TokenResponse(
        access_token=access.token, expires_in=access.expires_in, refresh_token=new.value
    )


@router.post(
    "/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(422)
)
def logout(body: LogoutRequest, session: SessionDep) -> None:
    """End the sign-in session of a refresh token: it and every access token of the session
    stop working at once. Always 204, whether the token was live, spent or unknown."""
    session_id = auth_sessions.session_for_token(session, security.sha256_hex(body.refresh_token))
    if session_id is not None:
        auth_sessions.revoke(session, session_id, "logout")


def _signed_in(caller: AuthenticatedUser) -> AuthenticatedUser:
    if caller.api_key_id is not None:
        raise PermissionDenied("sign-in sessions are managed signed in, not with an API key")
    return caller


@router.get("/me/sessions", responses=problem_responses(401, 403))
def list_sessions(caller: CurrentUser, session: SessionDep) -> SessionList:
    """Your live sign-in sessions, most recently used first; `current` marks this one."""
    _signed_in(caller)
    return SessionList(
        items=[
            SessionOut.model_validate(row).model_copy(
                update={"current": row.id == caller.session_id}
            )
            for row in auth_sessions.live_sessions(session, caller.user_id)
        ]
    )


@router.delete(
    "/me/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
def revoke_session(session_id: uuid.UUID, caller: CurrentUser, session: SessionDep) -> None:
    """End one of your sessions (a lost laptop): its refresh token and access tokens stop
    working at once. 404 when it is not yours or already ended."""
    _signed_in(caller)
    if not auth_sessions.revoke(session, session_id, "revoked", user_id=caller.user_id):
        raise NotFound(f"session {session_id} not found")
