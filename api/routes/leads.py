"""Leads: list/search, manual create, read with provenance, update, qualify, assign, bulk, export.

Who may do what (ARCHITECTURE §7): managers everything; members read and write the leads of
their own campaigns or assigned to them; viewers read; assignment is for managers. Queries live
in `models.leads_repo` / `models.leads_bulk`; these routes pick the scope and shape the answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api import audit
from api.audit import AuditedIdempotentRoute
from api.deps import (
    ManagerDep,
    ReaderDep,
    SessionDep,
    SettingsDep,
    WriterDep,
    scope_of,
)
from api.pagination import Page, PageParamsDep, paginate_rows
from api.problems import problem_responses
from api.schemas.clients import ClientFilter
from api.schemas.leads import (
    ITEM_COLUMNS,
    LEADS_PAGE_JSON,
    AssignIn,
    BulkIn,
    BulkItemOut,
    BulkOut,
    LeadCreate,
    LeadOut,
    LeadPriority,
    LeadsPage,
    LeadStatus,
    LeadUpdate,
    QualifyIn,
    SourceRecordOut,
    lead_items,
)
from models import leads_bulk, leads_repo
from models.leads import Lead
from models.leads_repo import LeadFilter, LeadScope
from runtime.db import get_engine
from runtime.errors import PermissionDenied

router = APIRouter(prefix="/leads", tags=["leads"], route_class=AuditedIdempotentRoute)

SORTABLE = {"created_at": Lead.created_at, "updated_at": Lead.updated_at, "score": Lead.score}


async def lead_filter(
    status: LeadStatus | None = None,
    priority: LeadPriority | None = None,
    campaign_id: uuid.UUID | None = None,
    assigned_to: uuid.UUID | None = None,
    data_source_id: uuid.UUID | None = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    created_from: Annotated[datetime | None, Query(description="inclusive")] = None,
    created_to: Annotated[datetime | None, Query(description="exclusive")] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="name, email, company, title")
    ] = None,
) -> LeadFilter:
    return LeadFilter(
        status, priority, campaign_id, assigned_to, data_source_id, tag, created_from, created_to, q
    )


FilterDep = Annotated[LeadFilter, Depends(lead_filter)]


def _out(session: Session, lead: Lead) -> LeadOut:
    return LeadOut.of(lead, leads_repo.sources_of(session, [lead.id])[lead.id])


@router.get("", response_model=Page[LeadOut], responses=problem_responses(422))
def list_leads(
    principal: ReaderDep,
    session: SessionDep,
    page: PageParamsDep,
    filters: FilterDep,
    client_id: ClientFilter = None,
) -> Response:
    """Keyset pages over (sort column, id); sort by created_at, updated_at or score."""
    scope = scope_of(principal, client_id)
    query, binds = leads_repo.list_query(scope, leads_repo.narrow(session, filters), ITEM_COLUMNS)
    rows = paginate_rows(session, query, page, sortable=SORTABLE, id_column=Lead.id, binds=binds)
    sources = leads_repo.sources_of(session, [row[0] for row in rows.rows])
    body: LeadsPage = {"items": lead_items(rows.rows, sources), "next_cursor": rows.next_cursor}
    if rows.total is not None:
        body["total"] = rows.total
    # Plain rows → dicts → JSON in the route's thread: no ORM instances, no `LeadOut` models,
    # and no second validation by FastAPI (the same bytes as `Page[LeadOut]`, tested).
    return Response(LEADS_PAGE_JSON.dump_json(body), media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, 409, 422))
def create_lead(
    body: LeadCreate, principal: WriterDep, session: SessionDep, response: Response
) -> LeadOut:
    """A hand-entered lead, deduplicated like scraped ones: 201 when new, 200 when merged."""
    lead, created = leads_repo.create_manual_lead(
        session,
        scope_of(principal),
        body.columns(),
        external_id=body.external_id,
        campaign_id=body.campaign_id,
        extras=body.model_dump(include={"status", "priority", "tags", "custom_fields"}),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return _out(session, lead)


@router.get("/export", responses=problem_responses(422))
def export_leads(
    principal: ReaderDep,
    settings: SettingsDep,
    filters: FilterDep,
    format: Literal["csv", "jsonl"] = "csv",
    client_id: ClientFilter = None,
) -> StreamingResponse:
    """The filtered leads as CSV or JSON lines, streamed by `COPY … TO STDOUT` (flat memory)."""
    engine = get_engine(settings.require_database_url())
    filename = f"leads.{format}"
    scope = scope_of(principal, client_id)
    return StreamingResponse(
        _copy_stream(engine, scope, filters, format, settings.export_timeout_s),
        media_type=leads_bulk.EXPORT_FORMATS[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _copy_stream(
    engine: Engine, scope: LeadScope, filters: LeadFilter, fmt: str, timeout_s: float
) -> Iterator[bytes]:
    """Its own connection: the response outlives the request's session."""
    with engine.connect() as conn, conn.begin():
        yield from leads_bulk.export_copy(conn, scope, filters, fmt, timeout_s=timeout_s)


@router.post("/bulk", responses=problem_responses(403, 422))
def bulk(body: BulkIn, principal: WriterDep, session: SessionDep) -> BulkOut:
    """One transaction over ≤ 1,000 leads (by ids or filter), with a result per id."""
    scope = scope_of(principal)
    if body.action == "assign" and not principal.has_role("manager"):
        raise PermissionDenied("assigning leads requires the role manager")
    filters = LeadFilter(**body.filter.model_dump()) if body.filter else None
    leads, results = leads_bulk.select_targets(session, scope, ids=body.ids, lead_filter=filters)
    if body.action == "delete":
        results += leads_bulk.bulk_delete(session, leads)
    elif body.action == "assign":
        assert body.assign is not None
        assignee = leads_repo.resolve_assignee(
            session, principal.domain_id, user_id=body.assign.user_id, email=body.assign.email
        )
        results += leads_bulk.bulk_assign(session, scope, leads, assignee)
    else:
        assert body.update is not None
        changes = body.update.model_dump(exclude_unset=True)
        results += leads_bulk.bulk_update(session, scope, leads, changes)
    items = [BulkItemOut(id=r.id, ok=r.ok, code=r.code, message=r.message) for r in results]
    succeeded = sum(1 for r in results if r.ok)
    # one audit row for the request, with how many leads it changed (not one per lead)
    changed = list(body.update.model_fields_set) if body.update else []
    audit.note(session, action=f"bulk_{body.action}", count=succeeded, fields=sorted(changed))
    return BulkOut(
        action=body.action, succeeded=succeeded, failed=len(results) - succeeded, results=items
    )


@router.get("/{lead_id}", responses=problem_responses(404))
def get_lead(lead_id: uuid.UUID, principal: ReaderDep, session: SessionDep) -> LeadOut:
    """One lead with its company, location, assignment and provenance (`sources`)."""
    return _out(session, leads_repo.get_lead(session, scope_of(principal), lead_id))


@router.get("/{lead_id}/sources", responses=problem_responses(404))
def lead_sources(
    lead_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> list[SourceRecordOut]:
    """Where a lead came from: each source and job that brought it, with the provider's record
    as received (`raw`), oldest first."""
    leads_repo.get_lead(session, scope_of(principal), lead_id)  # 404 unless visible to you
    return [SourceRecordOut(**row) for row in leads_repo.source_records(session, lead_id)]


@router.patch("/{lead_id}", responses=problem_responses(403, 404, 409, 422))
def update_lead(
    lead_id: uuid.UUID, body: LeadUpdate, principal: WriterDep, session: SessionDep
) -> LeadOut:
    """Change the fields sent; a status move outside the flow is a 409 naming the allowed ones."""
    scope = scope_of(principal)
    lead = leads_repo.get_lead(session, scope, lead_id, for_update=True)
    return _out(session, leads_repo.update_lead(session, scope, lead, body.changes()))


@router.delete(
    "/{lead_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404)
)
def delete_lead(lead_id: uuid.UUID, principal: WriterDep, session: SessionDep) -> None:
    """Soft delete: the row (and its identity keys) stay, so re-imports do not resurrect it."""
    lead = leads_repo.get_lead(session, scope_of(principal), lead_id)
    leads_repo.soft_delete(session, [lead.id])


@router.post("/{lead_id}/qualify", responses=problem_responses(403, 404, 409, 422))
def qualify_lead(
    lead_id: uuid.UUID, body: QualifyIn, principal: WriterDep, session: SessionDep
) -> LeadOut:
    """Score 1..5: ≥ 4 moves the lead to qualified, ≤ 2 to rejected, 3 keeps its status."""
    lead = leads_repo.get_lead(session, scope_of(principal), lead_id, for_update=True)
    lead = leads_repo.qualify(
        session,
        lead,
        score=body.score,
        criteria=body.criteria,
        notes=body.notes,
        by=principal.user_id,
    )
    return _out(session, lead)


@router.post("/{lead_id}/assign", responses=problem_responses(403, 404, 422))
def assign_lead(
    lead_id: uuid.UUID, body: AssignIn, principal: ManagerDep, session: SessionDep
) -> LeadOut:
    """Assign to a manager or member of the domain, who gets a `lead.assigned` notification."""
    scope = scope_of(principal)
    lead = leads_repo.get_lead(session, scope, lead_id, for_update=True)
    assignee = leads_repo.resolve_assignee(
        session, principal.domain_id, user_id=body.user_id, email=body.email
    )
    leads_repo.assign(session, principal.domain_id, [lead.id], assignee, principal.user_id)
    session.refresh(lead)
    return _out(session, lead)
