"""Single-use tokens: invitations to a domain and password resets.

Each token is stored hashed, expires, and is consumed by one UPDATE ... RETURNING so that two
racing uses get one win. Split from `models.tenancy_repo`, which uses `consume_invitation` when
an invited user signs up. Functions flush and never commit: the edge owns the transaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.tenancy import Invitation, PasswordResetToken

INVITATION_TTL = timedelta(days=7)
PASSWORD_RESET_TTL = timedelta(hours=1)


def create_password_reset(session: Session, user_id: uuid.UUID, token_hash: str) -> None:
    session.add(
        PasswordResetToken(
            user_id=user_id,
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + PASSWORD_RESET_TTL,
        )
    )
    session.flush()


def consume_password_reset(session: Session, token_hash: str) -> uuid.UUID | None:
    """Mark the token used and return its user, in one statement: two racing uses get one win."""
    user_id = session.scalar(
        update(PasswordResetToken)
        .where(
            PasswordResetToken.token_hash == token_hash,
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > datetime.now(UTC),
        )
        .values(used_at=datetime.now(UTC))
        .returning(PasswordResetToken.user_id)
    )
    if user_id is not None:
        # Any other outstanding reset for this user is void once the password changed.
        session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=datetime.now(UTC))
        )
    return user_id


def create_invitation(
    session: Session,
    *,
    domain_id: uuid.UUID,
    email: str,
    role: str,
    token_hash: str,
    invited_by: uuid.UUID | None,
) -> Invitation:
    """Issue an invitation, expiring any earlier pending one for the same email and domain."""
    session.execute(
        update(Invitation)
        .where(
            Invitation.domain_id == domain_id,
            func.lower(Invitation.email) == email.lower(),
            Invitation.accepted_at.is_(None),
            Invitation.expires_at > datetime.now(UTC),
        )
        .values(expires_at=datetime.now(UTC))
    )
    invitation = Invitation(
        domain_id=domain_id,
        email=email.lower(),
        role=role,
        token_hash=token_hash,
        invited_by=invited_by,
        expires_at=datetime.now(UTC) + INVITATION_TTL,
    )
    session.add(invitation)
    session.flush()
    return invitation


def find_invitation(session: Session, token_hash: str) -> Invitation | None:
    """The pending, unexpired invitation with this token (what an invitation link shows)."""
    return session.scalar(
        select(Invitation).where(
            Invitation.token_hash == token_hash,
            Invitation.accepted_at.is_(None),
            Invitation.expires_at > datetime.now(UTC),
        )
    )


def consume_invitation(session: Session, token_hash: str, email: str) -> Invitation | None:
    """Accept a pending, unexpired invitation addressed to `email`; None when there is none."""
    invitation_id = session.scalar(
        update(Invitation)
        .where(
            Invitation.token_hash == token_hash,
            func.lower(Invitation.email) == email.lower(),
            Invitation.accepted_at.is_(None),
            Invitation.expires_at > datetime.now(UTC),
        )
        .values(accepted_at=datetime.now(UTC))
        .returning(Invitation.id)
    )
    return None if invitation_id is None else session.get(Invitation, invitation_id)
