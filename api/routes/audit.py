"""`GET /audit`: the domain's audit log, for its managers (`api.audit` writes it).

Members and viewers get 403, and another domain's rows are simply never selected: the query is
scoped by the caller's domain like every list.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ManagerDep, SessionDep
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.audit import AuditEntryOut
from models.audit import AuditEntry, AuditFilter, audit_query

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", responses=problem_responses(403, 422))
def list_audit(
    principal: ManagerDep,
    session: SessionDep,
    page: PageParamsDep,
    entity: Annotated[
        str | None, Query(description="Entity type: data_source, schedule, lead, ...")
    ] = None,
    entity_id: uuid.UUID | None = None,
    actor: Annotated[uuid.UUID | None, Query(description="The acting user's id")] = None,
    action: Annotated[str | None, Query(description="create, update, delete, restore, ...")] = None,
    since: Annotated[datetime | None, Query(alias="from", description="At or after")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="Before")] = None,
) -> Page[AuditEntryOut]:
    """Who changed what in the domain, when, and from which request; newest first."""
    filters = AuditFilter(
        entity_type=entity,
        entity_id=entity_id,
        actor_user_id=actor,
        action=action,
        since=since,
        until=until,
    )
    rows = paginate(
        session,
        audit_query(principal.domain_id, filters),
        page,
        sortable={"created_at": AuditEntry.created_at},
        id_column=AuditEntry.id,
    )
    return rows.to_page([AuditEntryOut.model_validate(row) for row in rows.rows])
