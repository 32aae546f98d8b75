"""Self-service for the signed-in user: their name, password and email.

Changing the password or the email asks for the current password (a stolen access token alone
cannot take the account over), and wrong guesses count against the same per-(email, address)
back-off as logins. A new password ends every other session: access tokens and console
sessions carry a fingerprint of the password hash; the caller gets a fresh token in the answer.
A new email is confirmed by a token mailed to it, so nobody can move an account to an address
they do not read; the old address is told once the change is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Request, status

from api import credentials, ratelimit, security, sign_in
from api.deps import ClientIp, CurrentUser, RedisDep, SessionDep, SettingsDep
from api.mailer import Mail, MailDep
from api.problems import NotAuthenticated, problem_responses
from api.schemas.auth import (
    Accepted,
    EmailChangeConfirm,
    EmailChangeRequest,
    MembershipOut,
    MeResponse,
    MeUpdate,
    PasswordChange,
    TokenResponse,
    UserOut,
)
from models import auth_sessions, tenancy_repo
from models.tenancy import User
from runtime.errors import FieldError, PermissionDenied, ValidationFailed

router = APIRouter(tags=["auth"])


def _me(session: SessionDep, user: User) -> MeResponse:
    memberships = [
        MembershipOut.model_validate(m) for m in tenancy_repo.user_memberships(session, user.id)
    ]
    return MeResponse(**UserOut.model_validate(user).model_dump(), memberships=memberships)


def _user(session: SessionDep, caller: CurrentUser) -> User:
    user = tenancy_repo.get_user(session, caller.user_id)
    if user is None:  # deleted between authentication and now
        raise NotAuthenticated("the account no longer exists")
    return user


@contextmanager
def _password_checked(request: Request, redis: RedisDep, ip: str, email: str) -> Iterator[None]:
    """A wrong current password: a 422 on its field, counted by the login back-off."""
    limits: ratelimit.LoginLimits = getattr(
        request.app.state, "login_limits", ratelimit.LoginLimits()
    )
    try:
        with ratelimit.login_attempt(redis, limits, email=email, ip=ip):
            yield
    except NotAuthenticated as exc:
        message = "the current password is wrong"
        raise ValidationFailed(
            message, [FieldError("current_password", "invalid", message)]
        ) from exc


def _password_user(
    caller: CurrentUser, session: SessionDep, request: Request, redis: RedisDep, ip: str,
    password: str,
) -> User:  # fmt: skip
    if caller.api_key_id is not None:
        raise PermissionDenied("API keys cannot change the account; sign in with your password")
    with _password_checked(request, redis, ip, caller.email):
        return credentials.user_for_password(session, caller.email, password)


@router.get("/me", responses=problem_responses(401))
def me(caller: CurrentUser, session: SessionDep) -> MeResponse:
    """The caller and the domains they belong to, with their role in each."""
    return _me(session, _user(session, caller))


@router.patch("/me", responses=problem_responses(401, 422))
def update_me(body: MeUpdate, caller: CurrentUser, session: SessionDep) -> MeResponse:
    """Change your name. Fields left out stay as they are."""
    user = _user(session, caller)
    if "full_name" in body.model_fields_set:
        tenancy_repo.set_full_name(session, user, body.full_name)
    return _me(session, user)


@router.post("/me/password", responses=problem_responses(401, 403, 422, 429))
def change_password(
    body: PasswordChange,
    caller: CurrentUser,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    redis: RedisDep,
    ip: ClientIp,
) -> TokenResponse:
    """Set a new password; every other session (tokens, refresh tokens, console sign-ins) ends.

    Answers a fresh access and refresh token for this client, in a new sign-in session. API
    keys stay valid (they are not sessions; revoke them with `DELETE /api-keys/{id}`). 422 on
    `current_password` when it is wrong.
    """
    user = _password_user(caller, session, request, redis, ip, body.current_password)
    tenancy_repo.set_password(session, user.id, security.hash_password(body.new_password))
    session.refresh(user)
    auth_sessions.revoke_user_sessions(session, user.id, "password")
    tokens = sign_in.password_session(session, settings, user, request, ip)
    return TokenResponse.of(tokens)


@router.post(
    "/me/email",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 422, 429, 503),
)
def request_email_change(
    body: EmailChangeRequest,
    caller: CurrentUser,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    redis: RedisDep,
    mail: MailDep,
    ip: ClientIp,
) -> Accepted:
    """Mail a confirmation token to the new address; the email changes when it is confirmed
    with `POST /me/email/confirm` within an hour.

    The answer is the same whether or not the new address has an account (that is only said
    to whoever confirms, who proves they read it).
    """
    mail.require()
    user = _password_user(caller, session, request, redis, ip, body.current_password)
    change = security.EmailChange(user.id, user.email, body.new_email)
    token = security.issue_email_change_token(settings, change)
    mail.post(
        session,
        Mail(
            to=body.new_email,
            subject="Confirm your new Dashin email",
            body=(
                f"Someone asked to move the Dashin account {user.email} to this address. If it "
                "was you, send this token to POST /api/v1/me/email/confirm within an hour:"
                f"\n\n{token}\n\nIf it was not you, ignore this message."
            ),
            kind="email_change",
        ),
    )
    return Accepted(detail=f"a confirmation token was sent to {body.new_email}")


@router.post(
    "/me/email/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(409, 422),
)
def confirm_email_change(
    body: EmailChangeConfirm, session: SessionDep, settings: SettingsDep, mail: MailDep
) -> None:
    """Make the change a confirmation token asks for (no sign-in needed: the token is the proof).

    422 on `token` when it is invalid, expired or already used; 409 when the new address has
    an account by now. The old address is told of the change.
    """
    change = security.read_email_change_token(settings, body.token)
    if change is None or not tenancy_repo.change_email(
        session, change.user_id, change.old_email, change.new_email
    ):
        message = "the confirmation token is invalid, expired or already used"
        raise ValidationFailed(message, [FieldError("token", "invalid", message)])
    mail.post(
        session,
        Mail(
            to=change.old_email,
            subject="Your Dashin email was changed",
            body=(
                f"The Dashin account that used this address now signs in as {change.new_email}. "
                "If you did not ask for this, reset your password and contact your administrator."
            ),
            kind="email_change",
        ),
    )
