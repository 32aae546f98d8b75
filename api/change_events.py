"""Audited API changes of leads, campaigns and data sources, published to the domain's event log.

`api.audit` already knows, for every changing request, which entity of which domain it changed
and how, in the request's transaction and after the route has done its work: the right place for
the event too (one per request, a bulk request's included; `models.domain_events`). Only ids,
counts and kinds leave here, never a field's value.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from models import domain_events
from models.audit import Change

#: an audited action → what the event says happened
_PAST = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "restore": "restored",
    "qualify": "qualified",
    "assign": "assigned",
    "bulk_update": "updated",
    "bulk_delete": "deleted",
    "bulk_assign": "assigned",
}


def _bulk_ids(result: object) -> list[uuid.UUID]:
    """The ids a bulk answer reports as done (`results[].ok`)."""
    found = getattr(result, "results", None)
    if not isinstance(found, list):
        return []
    return [r.id for r in found if getattr(r, "ok", False) and isinstance(r.id, uuid.UUID)]


def publish(session: Session, change: Change, result: object) -> None:
    """One event for `change` when it is a lead, campaign or data source change of a domain."""
    if change.domain_id is None or change.entity_type not in domain_events.ENTITY_CHANNELS:
        return
    kind = f"{change.entity_type}.{_PAST.get(change.action, change.action)}"
    data: dict[str, Any]
    if change.entity_type == "lead":
        ids = [change.entity_id] if change.entity_id else _bulk_ids(result)
        if not ids:
            return
        data = {**domain_events.ids_payload(ids), "action": change.action}
    elif change.entity_id is not None:
        data = {"id": str(change.entity_id)}
    else:
        return
    domain_events.publish(session, change.domain_id, kind, data)
