"""Clients of an agency: the companies a domain runs campaigns for (issue 18, item 1).

A campaign belongs to at most one client (`campaigns.client_id`); a viewer may be limited to
some clients (`memberships.client_ids`) and then reads only those clients' campaigns, their
leads, links and analytics.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, domain_fk, updated_at, uuid_pk


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (
        # one name per domain, whatever its case: "Acme" and "ACME" are the same client
        Index(
            "uq_clients_domain_id_name_lower", "domain_id", func.lower(text("name")), unique=True
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    domain_id: Mapped[uuid.UUID] = domain_fk()
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
