"""Domains (tenants), their members and invitations.

Routes here name the domain in the path; the caller's role in *that* domain decides (any
member reads, managers change), and a domain the caller does not belong to answers 404.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, status
from sqlalchemy.orm import Session

from api import audit, domain_proof, security
from api.audit import AuditedRoute
from api.deps import (
    CurrentUser,
    DomainManagerDep,
    DomainReaderDep,
    SessionDep,
    SettingsDep,
)
from api.mailer import Mail, MailDep
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.domains import (
    DomainCreate,
    DomainOut,
    DomainUpdate,
    DomainVerification,
    InvitationCreate,
    InvitationOut,
    InvitationResult,
    MemberOut,
    MemberUpdate,
    VerificationCheck,
    VerificationMailRequest,
)
from models import clients_repo, tenancy_repo
from models.tenancy import Domain, Membership, User
from runtime.errors import Conflict, FieldError, PermissionDenied, ValidationFailed
from runtime.settings import Settings

router = APIRouter(prefix="/domains", tags=["domains"], route_class=AuditedRoute)


def _free_lapsed_name(session: Session, settings: Settings, domain_name: str) -> None:
    """A name held by a domain left unproven too long is free to claim (see sign-up)."""
    after = timedelta(days=settings.unverified_domain_release_days)
    tenancy_repo.release_if_unproven(session, tenancy_repo.find_domain(session, domain_name), after)


def _domain_out(domain: Domain, role: str | None) -> DomainOut:
    return DomainOut.model_validate(domain).model_copy(update={"role": role})


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, 409, 422))
def create_domain(
    body: DomainCreate, caller: CurrentUser, session: SessionDep, settings: SettingsDep
) -> DomainOut:
    """Create another domain (say, for a client); the caller becomes its manager."""
    if caller.api_key_id is not None:
        raise PermissionDenied("API keys act in one domain; log in with a password")
    if not caller.is_admin and not tenancy_repo.manages_any_domain(session, caller.user_id):
        raise PermissionDenied("only managers of a domain can create domains")
    _free_lapsed_name(session, settings, body.domain_name)
    domain = tenancy_repo.create_domain(
        session, body.domain_name, created_by=caller.user_id, unverified=True
    )
    tenancy_repo.add_membership(session, domain.id, caller.user_id, "manager")
    return _domain_out(domain, "manager")


@router.get("", responses=problem_responses(401))
def list_domains(caller: CurrentUser, session: SessionDep, page: PageParamsDep) -> Page[DomainOut]:
    """The caller's domains with their role in each (platform admins: every domain)."""
    query = tenancy_repo.domains_query(caller.user_id, all_domains=caller.is_admin)
    if caller.key_domain_id is not None:
        query = query.where(Domain.id == caller.key_domain_id)
    rows = paginate(
        session,
        query,
        page,
        sortable={"created_at": Domain.created_at, "domain_name": Domain.domain_name},
        id_column=Domain.id,
        default_sort="domain_name",
    )
    roles = tenancy_repo.roles_in(session, caller.user_id, [d.id for d in rows.rows])
    default_role = "admin" if caller.is_admin else None
    return rows.to_page([_domain_out(d, roles.get(d.id, default_role)) for d in rows.rows])


@router.get("/{domain_id}", responses=problem_responses(404))
def get_domain(principal: DomainReaderDep, session: SessionDep) -> DomainOut:
    """One domain the caller belongs to."""
    return _domain_out(tenancy_repo.get_domain(session, principal.domain_id), principal.role)


@router.patch("/{domain_id}", responses=problem_responses(403, 404, 409, 422))
def update_domain(
    body: DomainUpdate, principal: DomainManagerDep, session: SessionDep, settings: SettingsDep
) -> DomainOut:
    """Rename a domain or set its single sign-on joining (managers), or change its
    subscription (platform admins).

    A new name is unverified again until proven (`POST /domains/{id}/verification`), and single
    sign-on joining (`sso_join_role`) works only while the domain is verified (409 to turn it
    on before)."""
    domain = tenancy_repo.get_domain(session, principal.domain_id)
    if body.subscription_status is not None:
        if not principal.is_admin:
            raise PermissionDenied("only platform admins change a subscription")
        domain.subscription_status = body.subscription_status
    if body.domain_name is not None:
        if body.domain_name != domain.domain_name:
            _free_lapsed_name(session, settings, body.domain_name)
        tenancy_repo.rename_domain(session, domain, body.domain_name)
    if "sso_join_role" in body.model_fields_set:
        if body.sso_join_role is not None and domain.verified_at is None:
            raise Conflict(
                "single sign-on joining needs a verified domain: prove its ownership first "
                "(POST /domains/{id}/verification)"
            )
        domain.sso_join_role = body.sso_join_role
    session.flush()
    return _domain_out(domain, principal.role)


def _verification(domain: Domain) -> DomainVerification:
    verified = domain.verified_at is not None
    token = domain.verification_token
    return DomainVerification(
        status="verified" if verified else "unverified",
        verified_at=domain.verified_at,
        record_name=domain_proof.record_name(domain.domain_name),
        record_value=None if verified or token is None else domain_proof.record_value(token),
    )


@router.get("/{domain_id}/verification", responses=problem_responses(404))
def get_verification(principal: DomainReaderDep, session: SessionDep) -> DomainVerification:
    """The domain's ownership status and the DNS TXT record that proves it."""
    return _verification(tenancy_repo.get_domain(session, principal.domain_id))


@router.post("/{domain_id}/verification", responses=problem_responses(403, 404, 409, 422))
def verify_domain(
    principal: DomainManagerDep,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[
        VerificationCheck | None,
        Body(examples=[{"mail_token": "the token from the proof mail"}, {}]),
    ] = None,
) -> DomainVerification:
    """Prove ownership: with `mail_token` (from the proof mail), or else by the TXT record,
    checked now. Verified (200); 409 while the record is not published (yet); 422 for a wrong
    token."""
    domain = tenancy_repo.get_domain(session, principal.domain_id)
    challenge = domain.verification_token
    if domain.verified_at is not None or challenge is None:
        return _verification(domain)
    if body is not None and body.mail_token is not None:
        secret = settings.require_secret_key()
        if not domain_proof.mail_token_matches(
            secret, domain.id, domain.domain_name, challenge, body.mail_token
        ):
            message = "the token is not this domain's current proof token"
            raise ValidationFailed(message, [FieldError("mail_token", "invalid", message)])
    elif not domain_proof.is_proven(domain.domain_name, challenge):
        raise Conflict(
            f"no TXT record {domain_proof.record_name(domain.domain_name)} holding the "
            "verification value was found: publish it (GET this resource shows it) and retry"
        )
    tenancy_repo.mark_domain_verified(session, domain)
    return _verification(domain)


@router.post(
    "/{domain_id}/verification/mail",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(403, 404, 422, 503),
)
def mail_proof(
    body: VerificationMailRequest,
    principal: DomainManagerDep,
    session: SessionDep,
    settings: SettingsDep,
    mail: MailDep,
) -> DomainVerification:
    """Mail a proof token to an address at the domain; send it back with `POST .../verification`.

    Receiving mail at `@acme.com` is what owning `acme.com` means for most companies.
    """
    domain = tenancy_repo.get_domain(session, principal.domain_id)
    challenge = domain.verification_token
    if domain.verified_at is not None or challenge is None:
        return _verification(domain)
    if not tenancy_repo.email_matches_domain(body.email, domain.domain_name):
        message = f"must be an address at {domain.domain_name}"
        raise ValidationFailed(message, [FieldError("email", "domain_mismatch", message)])
    mail.require()
    token = domain_proof.mail_token(
        settings.require_secret_key(), domain.id, domain.domain_name, challenge
    )
    mail.post(
        session,
        Mail(
            to=body.email,
            subject=f"Confirm that {domain.domain_name} is yours on Dashin",
            body=(
                f"Someone is setting up {domain.domain_name} on Dashin and asked to prove it "
                f"by this mail. If that is your team, a manager of the domain sends this "
                f"token to POST {settings.api_url}/api/v1/domains/{domain.id}/verification "
                f'as {{"mail_token": "..."}}:\n\n{token}\n\nIf not, ignore this message.'
            ),
            kind="notification",
        ),
        domain_id=domain.id,
    )
    return _verification(domain)


@router.delete(
    "/{domain_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
)
def delete_domain(principal: DomainManagerDep, session: SessionDep) -> None:
    """Delete a domain and everything in it. Your sign-up domain cannot be deleted."""
    user = tenancy_repo.get_user(session, principal.user_id)
    assert user is not None  # authenticated in this same transaction
    tenancy_repo.delete_domain(session, principal.domain_id, user)


@router.get("/{domain_id}/members", responses=problem_responses(404))
def list_members(
    principal: DomainReaderDep, session: SessionDep, page: PageParamsDep
) -> Page[MemberOut]:
    """The domain's members with their roles."""
    rows = paginate(
        session,
        tenancy_repo.members_query(principal.domain_id),
        page,
        sortable={"created_at": Membership.created_at},
        id_column=Membership.id,
        default_sort="created_at",
    )
    users = tenancy_repo.users_by_id(session, [m.user_id for m in rows.rows])
    return rows.to_page([_member_out(m, users[m.user_id]) for m in rows.rows])


def _member_out(membership: Membership, user: User) -> MemberOut:
    return MemberOut(
        user_id=membership.user_id,
        email=user.email,
        full_name=user.full_name,
        role=membership.role,
        client_ids=membership.client_ids,
        created_at=membership.created_at,
    )


@router.post(
    "/{domain_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409, 422, 503),
)
def invite(
    body: InvitationCreate,
    principal: DomainManagerDep,
    session: SessionDep,
    settings: SettingsDep,
    mail: MailDep,
) -> InvitationResult:
    """Issue an invitation (token mailed and shown once) that the invitee accepts.

    Whether or not the email already has an account, the answer is the same (status and
    shape): nobody joins a domain without accepting, and the answer reveals no account. An
    existing user accepts with `POST /auth/invitation/accept`; a new one signs up with the token.
    The mail, with a link to `GET /auth/invitation`, leaves after the commit, from a worker.
    Without `SMTP_URL` in production invitations are refused (503 `mail_not_configured`).
    """
    domain = tenancy_repo.get_domain(session, principal.domain_id)
    mail.require()
    secret = security.new_single_use_token()
    invitation = tenancy_repo.create_invitation(
        session,
        domain_id=domain.id,
        email=body.email,
        role=body.role,
        token_hash=secret.hash,
        invited_by=principal.user_id,
    )
    mail.post(
        session,
        Mail(
            to=body.email,
            subject=f"You are invited to {domain.domain_name} on Dashin",
            body=(
                f"You are invited to join {domain.domain_name} as {body.role}. See the "
                f"invitation (valid for 7 days) at\n\n"
                f"{settings.api_url}/api/v1/auth/invitation?token={secret.value}\n\n"
                f"If you have a Dashin account, sign in and accept it at "
                f"{settings.api_url}/api/v1/auth/invitation/accept; otherwise sign up at "
                f"{settings.api_url}/api/v1/auth/signup with domain_name {domain.domain_name}. "
                f"Either way, with this invitation token:\n\n{secret.value}"
            ),
            kind="invitation",
        ),
        domain_id=domain.id,
    )
    audit.note(session, entity_id=invitation.id)
    return InvitationResult(invitation=InvitationOut.model_validate(invitation), token=secret.value)


@router.patch("/{domain_id}/members/{user_id}", responses=problem_responses(403, 404, 409, 422))
def change_member_role(
    user_id: uuid.UUID, body: MemberUpdate, principal: DomainManagerDep, session: SessionDep
) -> MemberOut:
    """Change a member's role, and the clients a viewer is limited to (`client_ids`; null: not
    limited; 422 for another role); the last manager cannot be demoted (409)."""
    changes = body.model_dump(exclude_unset=True)
    if "role" in changes and changes["role"] is None:
        message = "cannot be null"
        raise ValidationFailed(message, [FieldError("role", "null_not_allowed", message)])
    client_ids = changes.get("client_ids", tenancy_repo.KEEP)
    if client_ids:
        clients_repo.check_clients(session, principal.domain_id, client_ids)
    membership = tenancy_repo.change_role(
        session, principal.domain_id, user_id, changes.get("role"), client_ids=client_ids
    )
    users = tenancy_repo.users_by_id(session, [user_id])
    return _member_out(membership, users[user_id])


@router.delete(
    "/{domain_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
)
def remove_member(user_id: uuid.UUID, principal: DomainReaderDep, session: SessionDep) -> None:
    """Remove a member (managers), or leave the domain (anyone, as themselves).

    The last manager cannot be removed and cannot leave (409).
    """
    if user_id != principal.user_id and not principal.has_role("manager"):
        raise PermissionDenied("only managers remove other members")
    tenancy_repo.remove_member(session, principal.domain_id, user_id)
