"""Reading and acknowledging a user's own notifications.

Every query filters on `user_id` (and the domain the request acts in), so one user can never
read or mark another user's notification: a foreign id is simply not found.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from models.notifications import Notification
from runtime.errors import NotFound


def list_query(
    user_id: uuid.UUID, domain_id: uuid.UUID, *, unread: bool | None = None
) -> Select[Notification]:
    query = select(Notification).where(
        Notification.user_id == user_id, Notification.domain_id == domain_id
    )
    if unread is True:
        query = query.where(Notification.read_at.is_(None))
    elif unread is False:
        query = query.where(Notification.read_at.is_not(None))
    return query


def mark_read(
    session: Session, notification_id: uuid.UUID, user_id: uuid.UUID, domain_id: uuid.UUID
) -> Notification:
    """Mark one notification read; reading it twice keeps the first `read_at`."""
    notification = session.scalar(
        list_query(user_id, domain_id).where(Notification.id == notification_id)
    )
    if notification is None:
        raise NotFound(f"notification {notification_id} not found")
    if notification.read_at is None:
        session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.read_at.is_(None))
            .values(read_at=func.now())
        )
        session.refresh(notification)
    return notification


def mark_all_read(session: Session, user_id: uuid.UUID, domain_id: uuid.UUID) -> int:
    result = session.execute(
        update(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.domain_id == domain_id,
            Notification.read_at.is_(None),
        )
        .values(read_at=func.now())
        .returning(Notification.id)
    )
    return len(result.all())


def for_user(session: Session, ids: Sequence[uuid.UUID], user_id: uuid.UUID) -> list[Notification]:
    """The given notifications that belong to `user_id` (the /events stream re-reads these)."""
    if not ids:
        return []
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.id.in_(ids), Notification.user_id == user_id)
            .order_by(Notification.created_at, Notification.id)
        )
    )
