"""Erasure (GDPR art. 17): a person's lead and every trace of it, gone in one transaction.

Why targeted statements and not a sweep of every column: the places a person's data lands are
known (the lead, its identity keys, provenance with the raw provider payloads, row errors and
log lines that quote a row, webhook payloads, cached idempotent responses, uploaded files), and each
is reached by an index or the domain's own rows. The erasure then suppresses every identity key
the lead had (hashed, `models.suppressions`), so the next import does not bring the person
back, and leaves an audit record saying who erased how many rows when, without the data itself.

Uploaded files that quote the person are deleted whole (a CSV holds many people, and cutting
one row out of a stored file would change what the jobs that read it saw); rerunning such a job
then fails for want of its file, which is the price of erasing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, Select, String, func, or_, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from models import suppressions
from models.base import Base, created_at, domain_fk, enum_check, jsonb_default, uuid_pk
from models.leads import Lead, LeadKey

ERASURE_TRIGGERS = ("request", "suppression")


class Erasure(Base):
    """The audit record of one erasure: who, when, how many rows; never whose data."""

    __tablename__ = "erasures"
    __table_args__ = (enum_check("trigger", ERASURE_TRIGGERS),)

    id: Mapped[uuid.UUID] = uuid_pk()
    domain_id: Mapped[uuid.UUID] = domain_fk()
    erased_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    trigger: Mapped[str] = mapped_column(String(16))
    leads: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    #: rows removed per table, e.g. {"leads": 1, "lead_keys": 2, "lead_sources": 1}
    tables: Mapped[dict[str, Any]] = jsonb_default()
    created_at: Mapped[datetime] = created_at()


@dataclass(frozen=True)
class Erased:
    id: uuid.UUID
    leads: int
    rows: int
    tables: dict[str, int]
    suppressed: int


def leads_by_email(session: Session, domain_id: uuid.UUID, email: str) -> list[uuid.UUID]:
    """Leads (live or soft-deleted) of the domain with this normalised email, by key or field."""
    owners = select(LeadKey.lead_id).where(
        LeadKey.domain_id == domain_id, LeadKey.key == "email:" + email
    )
    return list(
        session.scalars(
            select(Lead.id).where(
                Lead.domain_id == domain_id,
                or_(Lead.id.in_(owners), func.lower(Lead.email) == email),
            )
        )
    )


def lead_exists(session: Session, domain_id: uuid.UUID, lead_id: uuid.UUID) -> bool:
    found = session.scalar(select(Lead.id).where(Lead.id == lead_id, Lead.domain_id == domain_id))
    return found is not None


# Each statement deletes one table's traces and answers how many rows went. `:needles` are the
# lower-cased identity values (emails, LinkedIn URLs) a free-text column may quote.
_DELETES: tuple[tuple[str, str], ...] = (
    (
        "job_record_errors",
        """DELETE FROM job_record_errors e USING jobs j
           WHERE e.job_id = j.id AND j.domain_id = :domain_id AND e.raw IS NOT NULL
             AND EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) n
                         WHERE strpos(lower(e.raw || ' ' || e.message), n) > 0)""",
    ),
    (
        "job_logs",
        """DELETE FROM job_logs l USING jobs j
           WHERE l.job_id = j.id AND j.domain_id = :domain_id
             AND EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) n
                         WHERE strpos(lower(l.message || ' ' || l.fields::text), n) > 0)""",
    ),
    (
        "webhook_messages",
        """DELETE FROM webhook_messages m WHERE m.domain_id = :domain_id
             AND EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) n
                         WHERE strpos(lower(m.payload::text), n) > 0)""",
    ),
    (
        "notifications",
        """DELETE FROM notifications x WHERE x.domain_id = :domain_id
             AND EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) n
                         WHERE strpos(lower(x.payload::text), n) > 0)""",
    ),
    (
        "idempotency_keys",
        """DELETE FROM idempotency_keys k WHERE k.domain_id = :domain_id AND k.body IS NOT NULL
             AND EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) n
                         WHERE strpos(lower(convert_from(k.body, 'UTF8')), n) > 0)""",
    ),
    (
        # A stored file quoting the person goes whole: its jobs have read it, and cutting one
        # row out would change what they saw. Each chunk is searched with the head of the
        # next one, so a value split across the 1 MiB boundary is found too.
        "uploads",
        """DELETE FROM uploads u WHERE u.domain_id = :domain_id AND EXISTS (
             SELECT 1 FROM upload_chunks c
             LEFT JOIN upload_chunks nx ON nx.upload_id = c.upload_id AND nx.seq = c.seq + 1
             CROSS JOIN unnest(CAST(:needles AS text[])) n
             WHERE c.upload_id = u.id AND strpos(lower(encode(
                 c.data || coalesce(substring(nx.data FROM 1 FOR 1000), ''::bytea), 'escape'
             )), n) > 0)""",
    ),
    ("lead_sources", "DELETE FROM lead_sources WHERE lead_id = ANY(CAST(:lead_ids AS uuid[]))"),
    ("lead_keys", "DELETE FROM lead_keys WHERE lead_id = ANY(CAST(:lead_ids AS uuid[]))"),
    (
        "leads",
        "DELETE FROM leads WHERE domain_id = :domain_id AND id = ANY(CAST(:lead_ids AS uuid[]))",
    ),
)


def erase_leads(
    session: Session,
    domain_id: uuid.UUID,
    lead_ids: Sequence[uuid.UUID],
    *,
    erased_by: uuid.UUID | None,
    trigger: str = "request",
    extra_keys: Sequence[str] = (),
) -> Erased:
    """Erase `lead_ids` (of `domain_id`) in the caller's transaction; suppress their identity
    keys and `extra_keys` (the email asked for, even when no lead had it)."""
    ids = list(lead_ids)
    keys = set(extra_keys)
    needles: set[str] = {k.split(":", 1)[1] for k in extra_keys if k.startswith("email:")}
    if ids:
        for key in session.scalars(select(LeadKey.key).where(LeadKey.lead_id.in_(ids))):
            keys.add(key)
        for email, linkedin in session.execute(
            select(Lead.email, Lead.linkedin_url).where(
                Lead.id.in_(ids), Lead.domain_id == domain_id
            )
        ):
            if email:
                keys.add("email:" + email.lower())
            for value in (email, linkedin):
                if value:
                    needles.add(value.lower())
    for key in keys:
        if key.startswith(("email:", "li:")):
            needles.add(key.split(":", 1)[1].lower())
    # One erasure at a time per domain, and none beside a page write: the sink takes the same
    # lock, so a job cannot re-insert the person between our delete and our suppression.
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('dashin.sink'), hashtext(:domain))"),
        {"domain": str(domain_id)},
    )
    added = suppressions.add(session, domain_id, keys, origin="erasure", created_by=erased_by)
    tables: dict[str, int] = {}
    params = {"domain_id": domain_id, "lead_ids": ids, "needles": sorted(needles)}
    for table, statement in _DELETES:
        if not needles and table not in ("lead_sources", "lead_keys", "leads"):
            continue
        count = int(session.execute(text(statement), params).rowcount or 0)  # type: ignore[attr-defined]
        if count:
            tables[table] = count
    rows = sum(tables.values())
    audit = Erasure(
        domain_id=domain_id,
        erased_by=erased_by,
        trigger=trigger,
        leads=tables.get("leads", 0),
        rows=rows,
        tables=tables,
    )
    session.add(audit)
    session.flush()
    return Erased(audit.id, audit.leads, rows, tables, added.added)


def audit_query(domain_id: uuid.UUID) -> Select[Erasure]:
    return select(Erasure).where(Erasure.domain_id == domain_id)
