"""Bulk lead actions (one transaction, per-id results) and the streaming export query.

Bulk actions lock the selected visible leads (`FOR UPDATE`, id order so two bulk calls cannot
deadlock), decide per lead, then apply one set-based statement to the leads that passed. The
caller's transaction makes it all-or-nothing for the rows that passed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from models import leads_repo
from models.leads import Lead
from models.leads_repo import LeadFilter, LeadScope
from records import LEAD_FIELDS
from runtime.errors import Conflict, FieldError, ValidationFailed

MAX_BULK = 1000


@dataclass(frozen=True)
class BulkResult:
    id: uuid.UUID
    ok: bool
    code: str | None = None
    message: str | None = None


def select_targets(
    session: Session,
    scope: LeadScope,
    *,
    ids: list[uuid.UUID] | None,
    lead_filter: LeadFilter | None,
) -> tuple[list[Lead], list[BulkResult]]:
    """The visible leads to act on, locked, and a `not_found` result for each id not among them."""
    query = leads_repo.leads_query(scope, lead_filter)
    if ids is not None:
        query = query.where(Lead.id.in_(ids))
    leads = list(session.scalars(query.order_by(Lead.id).limit(MAX_BULK + 1).with_for_update()))
    if len(leads) > MAX_BULK:
        message = f"the filter matches more than {MAX_BULK} leads; narrow it"
        raise ValidationFailed(message, [FieldError("filter", "too_many", message)])
    found = {lead.id for lead in leads}
    missing = [
        BulkResult(i, False, "not_found", "lead not found")
        for i in dict.fromkeys(ids or [])
        if i not in found
    ]
    return leads, missing


def bulk_update(
    session: Session, scope: LeadScope, leads: list[Lead], changes: dict[str, Any]
) -> list[BulkResult]:
    """Apply `changes` to every lead whose status move (if any) is allowed."""
    if "campaign_id" in changes:
        leads_repo.check_campaign(session, scope, changes["campaign_id"])
    results: list[BulkResult] = []
    passed: list[uuid.UUID] = []
    for lead in leads:
        try:
            if "status" in changes:
                leads_repo.check_transition(lead.status, changes["status"])
        except Conflict as exc:
            results.append(BulkResult(lead.id, False, exc.code, exc.message))
            continue
        passed.append(lead.id)
        results.append(BulkResult(lead.id, True))
    if passed and changes:
        session.execute(update(Lead).where(Lead.id.in_(passed)).values(**changes))
    return results


def bulk_delete(session: Session, leads: list[Lead]) -> list[BulkResult]:
    ids = [lead.id for lead in leads]
    leads_repo.soft_delete(session, ids)
    return [BulkResult(i, True) for i in ids]


def bulk_assign(
    session: Session, scope: LeadScope, leads: list[Lead], assignee: uuid.UUID
) -> list[BulkResult]:
    ids = [lead.id for lead in leads]
    leads_repo.assign(session, scope.domain_id, ids, assignee, scope.user_id)
    return [BulkResult(i, True) for i in ids]


EXPORT_COLUMNS = (
    "id",
    *LEAD_FIELDS,
    "status",
    "priority",
    "score",
    "tags",
    "campaign_id",
    "assigned_to",
    "created_at",
)


def export_rows(
    session: Session, scope: LeadScope, lead_filter: LeadFilter, *, batch: int = 2000
) -> Iterator[Row[Any]]:
    """Every matching lead as a row of EXPORT_COLUMNS, read through a server-side cursor
    `batch` rows at a time, so memory stays flat however many leads match."""
    columns = [getattr(Lead, c) for c in EXPORT_COLUMNS]
    query = (
        select(*columns)
        .where(leads_repo.visible(scope), *leads_repo.filter_clauses(lead_filter))
        .order_by(Lead.created_at, Lead.id)
        .execution_options(yield_per=batch)
    )
    yield from session.execute(query)
