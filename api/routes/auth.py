"""Sign-up, login, password reset and invitations (`/me` lives in `api.routes.me`).

Sign-up and login answer an access token and a refresh token, in a sign-in session of their
own (`api.sign_in`); refresh, logout, identity-provider sign-in and `/me/sessions` live in
`api.routes.sessions`.

Login and password-reset requests are rate-limited per email and per client address (Redis
sliding windows). Password reset always answers 202, whether or not the email has an account,
so it cannot be used to find out who has one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from api import credentials, ratelimit, security, sign_in
from api.deps import ClientIp, CurrentUser, RedisDep, SessionDep, SettingsDep
from api.mailer import Mail, MailDep
from api.problems import NotAuthenticated, problem_responses
from api.schemas.auth import (
    Accepted,
    InvitationAccept,
    LoginRequest,
    MembershipOut,
    PasswordResetConfirm,
    PasswordResetRequest,
    PendingInvitation,
    SignupRequest,
    SignupResponse,
    TokenResponse,
    UserOut,
)
from models import auth_sessions, tenancy_repo
from runtime.errors import FieldError, NotFound, PermissionDenied, ValidationFailed

router = APIRouter(tags=["auth"])


def _limits(request: Request) -> ratelimit.LoginLimits:
    limits: ratelimit.LoginLimits = getattr(
        request.app.state, "login_limits", ratelimit.LoginLimits()
    )
    return limits


@router.post(
    "/auth/signup",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
)
def signup(
    body: SignupRequest, request: Request, session: SessionDep, settings: SettingsDep, ip: ClientIp
) -> SignupResponse:
    """Create an account: found a new domain (as its manager) or join one by invitation."""
    password_hash = security.hash_password(body.password)
    signed_up = tenancy_repo.sign_up(
        session,
        email=body.email,
        password_hash=password_hash,
        domain_name=body.domain_name,
        full_name=body.full_name,
        invitation_token_hash=(
            security.sha256_hex(body.invitation_token) if body.invitation_token else None
        ),
        allow_any_domain_name=settings.allow_any_domain_name,
        release_unverified_after=timedelta(days=settings.unverified_domain_release_days),
    )
    tokens = sign_in.password_session(session, settings, signed_up.user, request, ip)
    return SignupResponse(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        user=UserOut.model_validate(signed_up.user),
        domain_id=signed_up.domain_id,
        role=signed_up.role,
    )


@router.post("/auth/login", responses=problem_responses(401, 422, 429))
def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    redis: RedisDep,
    ip: ClientIp,
) -> TokenResponse:
    """Exchange email and password for a short-lived access token (a JWT) and a refresh token.

    The pair opens a sign-in session (listed by `GET /me/sessions`); `POST /auth/refresh`
    renews it and `POST /auth/logout` ends it, access token included."""
    with ratelimit.login_attempt(redis, _limits(request), email=body.email, ip=ip):
        user = credentials.user_for_password(session, body.email, body.password)
    tokens = sign_in.password_session(session, settings, user, request, ip)
    return TokenResponse.of(tokens)


@router.post(
    "/auth/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(422, 429, 503),
)
def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    mail: MailDep,
    ip: ClientIp,
) -> Accepted:
    """Mail a single-use reset token if the email has an account; the answer is the same.

    The mail leaves after the commit, from a worker. Without `SMTP_URL` in production the
    request is refused (503 `mail_not_configured`) whether or not the email has an account.
    """
    mail.require()
    ratelimit.check_attempt(redis, "password-reset", _limits(request), email=body.email, ip=ip)
    user = tenancy_repo.get_user_by_email(session, body.email)
    if user is not None and user.is_active:
        secret = security.new_single_use_token()
        tenancy_repo.create_password_reset(session, user.id, secret.hash)
        mail.post(
            session,
            Mail(
                to=user.email,
                subject="Reset your Dashin password",
                body=(
                    "Someone asked to reset the password of your Dashin account. If it was you, "
                    "send this token to POST /api/v1/auth/password-reset/confirm within an hour:"
                    f"\n\n{secret.value}\n\nIf it was not you, ignore this message."
                ),
                kind="password_reset",
            ),
        )
    return Accepted(detail="if the email has an account, a reset token was sent to it")


@router.post(
    "/auth/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(422),
)
def confirm_password_reset(body: PasswordResetConfirm, session: SessionDep) -> None:
    """Set a new password with a reset token; the token, earlier access tokens, every sign-in
    session and the user's API keys (except service keys) stop working."""
    user_id = tenancy_repo.consume_password_reset(session, security.sha256_hex(body.token))
    if user_id is None:
        message = "the reset token is invalid, expired or already used"
        raise ValidationFailed(message, [FieldError("token", "invalid", message)])
    tenancy_repo.set_password(session, user_id, security.hash_password(body.new_password))
    tenancy_repo.revoke_user_keys(session, user_id)
    auth_sessions.revoke_user_sessions(session, user_id, "password")


@router.get("/auth/invitation", responses=problem_responses(404))
def show_invitation(
    session: SessionDep,
    token: Annotated[str, Query(min_length=1, max_length=200, description="the invitation token")],
) -> PendingInvitation:
    """What an invitation link leads to: the domain, email and role it offers.

    Accept it with `POST /auth/signup` and the same token as `invitation_token`.
    """
    invitation = tenancy_repo.find_invitation(session, security.sha256_hex(token))
    if invitation is None:
        raise NotFound("the invitation is invalid, expired or already used")
    domain = tenancy_repo.get_domain(session, invitation.domain_id)
    return PendingInvitation(
        domain_name=domain.domain_name,
        email=invitation.email,
        role=invitation.role,
        expires_at=invitation.expires_at,
    )


@router.post(
    "/auth/invitation/accept",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
def accept_invitation(
    body: InvitationAccept, caller: CurrentUser, session: SessionDep
) -> MembershipOut:
    """Join a domain you were invited to, signed in as the invited email (your consent).

    Answers the new membership; 422 on `token` when the invitation is invalid, expired, used
    or addressed to another email; 409 when you are a member already.
    """
    if caller.api_key_id is not None:
        raise PermissionDenied("API keys act in one domain; log in with a password")
    user = tenancy_repo.get_user(session, caller.user_id)
    if user is None:  # deleted between authentication and now
        raise NotAuthenticated("the account no longer exists")
    joined = tenancy_repo.accept_invitation(session, security.sha256_hex(body.token), user)
    return MembershipOut.model_validate(joined)
