"""The audit log: who changed which entity of a domain, how, when, and from which request.

A row names the entity (type and id), the action (`create`, `update`, `delete`, `restore`,
`start`, ...), the NAMES of the fields the request set and, for bulk requests, how many rows it
touched. It never holds a field's value: an audit trail kept for years must not become a second
copy of the personal data (or credentials) it is about, and erasure (`models.erasure`) must not
have to reach into it.

`domain_id` and the actor ids are plain columns without foreign keys on purpose: the trail of a
deleted domain, member or API key is exactly what an audit is for, so it outlives them.
Rows are written by `record` in the transaction of the change they describe (the API's
`api.audit` calls it before its session commits), so a rolled-back change leaves no row and a
committed one always has its row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, Select, String, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, created_at, uuid_pk

#: bounds on what one row holds: field names are schema names, never unbounded user text
MAX_FIELDS = 64
MAX_FIELD_NAME = 100


class AuditEntry(Base):
    """One audited change (module docstring); no personal values, no secrets."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_domain_id_created_at", "domain_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    domain_id: Mapped[uuid.UUID | None]
    actor_user_id: Mapped[uuid.UUID | None]
    actor_api_key_id: Mapped[uuid.UUID | None]
    #: the actor's role in the domain then; `admin` for a platform admin acting as support
    actor_role: Mapped[str | None] = mapped_column(String(16))
    actor_is_admin: Mapped[bool] = mapped_column(Boolean, server_default="false")
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(40))
    fields: Mapped[list[str]] = mapped_column(ARRAY(String(MAX_FIELD_NAME)), server_default="{}")
    count: Mapped[int] = mapped_column(Integer, server_default="1")
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = created_at()


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None
    api_key_id: uuid.UUID | None = None
    role: str | None = None
    is_admin: bool = False


@dataclass(frozen=True)
class Change:
    domain_id: uuid.UUID | None
    entity_type: str
    entity_id: uuid.UUID | None
    action: str
    fields: Sequence[str] = ()
    count: int = 1


def record(session: Session, actor: Actor, change: Change, request_id: str | None) -> None:
    """Add the audit row to the caller's transaction (it commits or rolls back with the change)."""
    names = sorted({name[:MAX_FIELD_NAME] for name in change.fields})[:MAX_FIELDS]
    session.add(
        AuditEntry(
            domain_id=change.domain_id,
            actor_user_id=actor.user_id,
            actor_api_key_id=actor.api_key_id,
            actor_role=actor.role,
            actor_is_admin=actor.is_admin,
            entity_type=change.entity_type,
            entity_id=change.entity_id,
            action=change.action,
            fields=names,
            count=change.count,
            request_id=request_id,
        )
    )
    session.flush()


@dataclass(frozen=True)
class AuditFilter:
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    actor_user_id: uuid.UUID | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_query(domain_id: uuid.UUID, filters: AuditFilter) -> Select[AuditEntry]:
    """The domain's audit rows matching `filters` (order and paging left to the paginator)."""
    query = select(AuditEntry).where(AuditEntry.domain_id == domain_id)
    if filters.entity_type is not None:
        query = query.where(AuditEntry.entity_type == filters.entity_type)
    if filters.entity_id is not None:
        query = query.where(AuditEntry.entity_id == filters.entity_id)
    if filters.actor_user_id is not None:
        query = query.where(AuditEntry.actor_user_id == filters.actor_user_id)
    if filters.action is not None:
        query = query.where(AuditEntry.action == filters.action)
    if filters.since is not None:
        query = query.where(AuditEntry.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.created_at < filters.until)
    return query
