"""Creating notifications: one row per recipient, plus `NOTIFY notifications`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models.notifications import Notification
from models.notify import pg_notify
from models.tenancy import Membership


def domain_managers(session: Session, domain_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(Membership.user_id).where(
                Membership.domain_id == domain_id, Membership.role == "manager"
            )
        )
    )


def notify_users(
    session: Session,
    domain_id: uuid.UUID,
    user_ids: Iterable[uuid.UUID | None],
    kind: str,
    payload: dict[str, Any],
) -> list[uuid.UUID]:
    recipients = sorted({u for u in user_ids if u is not None}, key=str)
    if not recipients:
        return []
    ids = list(
        session.scalars(
            insert(Notification)
            .values(
                [
                    {"user_id": u, "domain_id": domain_id, "kind": kind, "payload": payload}
                    for u in recipients
                ]
            )
            .returning(Notification.id)
        )
    )
    for user_id, notification_id in zip(recipients, ids, strict=True):
        pg_notify(session, "notifications", f"{user_id}:{notification_id}")
    return ids
