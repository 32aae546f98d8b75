"""Erasure (`POST /leads/erase`) and its audit trail (`GET /erasures`): managers only.

Erasing is final: the lead, its identity keys, provenance with the raw provider payloads, row
errors and log lines quoting the person go in one transaction, the person's keys join the
suppression list, and an audit record keeps who erased how many rows when (`models.erasure`).
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ManagerDep, SessionDep
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.privacy import EraseIn, ErasureOut
from models import erasure
from models.erasure import Erasure
from records.normalize import normalize_email
from runtime.errors import FieldError, NotFound, ValidationFailed

router = APIRouter(tags=["erasures"])


@router.post("/leads/erase", responses=problem_responses(403, 404, 422))
def erase_lead(body: EraseIn, principal: ManagerDep, session: SessionDep) -> ErasureOut:
    """Erase a person by `email` (every lead of the domain with it; the email is suppressed
    even when no lead has it) or one lead by `lead_id`. Answers the audit record."""
    keys: list[str] = []
    if body.lead_id is not None:
        if not erasure.lead_exists(session, principal.domain_id, body.lead_id):
            raise NotFound(f"lead {body.lead_id} not found")
        lead_ids = [body.lead_id]
    else:
        email = normalize_email(body.email)
        if email is None:
            message = "not an email address"
            raise ValidationFailed(message, [FieldError("email", "invalid", message)])
        lead_ids = erasure.leads_by_email(session, principal.domain_id, email)
        keys.append("email:" + email)
    done = erasure.erase_leads(
        session, principal.domain_id, lead_ids, erased_by=principal.user_id, extra_keys=keys
    )
    return ErasureOut(
        id=done.id,
        erased_by=principal.user_id,
        leads=done.leads,
        rows=done.rows,
        tables=done.tables,
    )


@router.get("/erasures", responses=problem_responses(403, 422))
def list_erasures(
    principal: ManagerDep, session: SessionDep, page: PageParamsDep
) -> Page[ErasureOut]:
    """The domain's erasure audit records, newest first: who, when, how many rows."""
    rows = paginate(
        session,
        erasure.audit_query(principal.domain_id),
        page,
        sortable={"created_at": Erasure.created_at},
        id_column=Erasure.id,
    )
    return rows.to_page([ErasureOut.model_validate(e) for e in rows.rows])
