"""Declarative base: constraint naming convention, UUID keys, timezone-aware timestamps.

Enums are stored as text with CHECK constraints (`enum_check`): adding a value is a migration of
one constraint, and the database, not only Python, rejects a bad value.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, MetaData, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.errors import NotFound

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dict[str, Any]: JSONB,
        uuid.UUID: UUID(as_uuid=True),
        datetime: DateTime(timezone=True),
    }


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))


def created_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


def updated_at() -> Mapped[datetime]:
    """Maintained by the `set_updated_at` trigger, so bulk Core updates keep it true too."""
    return mapped_column(server_default=func.now())


def domain_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)


def user_fk_nullable() -> Mapped[uuid.UUID | None]:
    return mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)


class DomainResource:
    """The columns of a domain's resource that users create (campaigns, links, schedules, data
    sources, uploads, jobs): its id and domain first, then its own columns, then who made it and
    when. One declaration instead of five lines in each of those tables."""

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()"), sort_order=-1
    )
    domain_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), index=True, sort_order=-1
    )
    created_by: Mapped[uuid.UUID | None] = user_fk_nullable()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


def jsonb_default(default: str = "{}") -> Mapped[dict[str, Any]]:
    return mapped_column(JSONB, server_default=text(f"'{default}'::jsonb"))


def enum_check(column: str, values: tuple[str, ...], name: str | None = None) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name or f"{column}_valid")


def found(row: T | None, what: str, row_id: object) -> T:
    """`row`, or a 404 naming what was asked for. Repositories look rows up within the caller's
    domain, so another domain's row is simply not found (never "forbidden")."""
    if row is None:
        raise NotFound(f"{what} {row_id} not found")
    return row
