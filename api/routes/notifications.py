"""`/notifications`: the caller's own in-app notifications in the current domain.

Every query filters on the caller's user id, so another user's notification id is not found.
Viewers may read and acknowledge theirs too: marking read changes nothing but their own inbox.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.deps import ReaderDep, SessionDep
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.notifications import NotificationOut, ReadAllOut
from models import notifications_query
from models.notifications import Notification

router = APIRouter(prefix="/notifications", tags=["notifications"])

SORTABLE = {"created_at": Notification.created_at}


@router.get("", responses=problem_responses(404, 422))
def list_notifications(
    session: SessionDep, principal: ReaderDep, page: PageParamsDep, unread: bool | None = None
) -> Page[NotificationOut]:
    """The caller's notifications in the domain, newest first."""
    query = notifications_query.list_query(principal.user_id, principal.domain_id, unread=unread)
    rows = paginate(session, query, page, sortable=SORTABLE, id_column=Notification.id)
    return rows.to_page([NotificationOut.build(n) for n in rows.rows])


@router.post("/read-all", responses=problem_responses(404))
def read_all_notifications(session: SessionDep, principal: ReaderDep) -> ReadAllOut:
    """Mark every notification of the caller in the domain as read."""
    return ReadAllOut(
        marked=notifications_query.mark_all_read(session, principal.user_id, principal.domain_id)
    )


@router.post("/{notification_id}/read", responses=problem_responses(404))
def read_notification(
    notification_id: uuid.UUID, session: SessionDep, principal: ReaderDep
) -> NotificationOut:
    """Mark one notification as read."""
    note = notifications_query.mark_read(
        session, notification_id, principal.user_id, principal.domain_id
    )
    return NotificationOut.build(note)
