"""A domain's data policy: what a new suppression does to existing leads, and retention days.

`suppress` is the one way entries reach the suppression list from outside an erasure: it adds
the hashes and then, as the domain chose, tags the matching leads `suppressed` or erases them
(each erasure audited like one asked for by hand).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import erasure, suppressions
from models.tenancy import RETENTION_DEFAULTS, Domain
from runtime.errors import NotFound

POLICY_FIELDS = ("suppression_action", *RETENTION_DEFAULTS)


def get_policy(session: Session, domain_id: uuid.UUID) -> dict[str, Any]:
    columns = [getattr(Domain, name) for name in POLICY_FIELDS]
    row = session.execute(select(*columns).where(Domain.id == domain_id)).first()
    if row is None:
        raise NotFound(f"domain {domain_id} not found")
    return dict(zip(POLICY_FIELDS, row, strict=True))


def update_policy(
    session: Session, domain_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    changes = {k: v for k, v in changes.items() if k in POLICY_FIELDS}
    if changes:
        session.execute(update(Domain).where(Domain.id == domain_id).values(**changes))
    return get_policy(session, domain_id)


@dataclass(frozen=True)
class Suppressed:
    added: int
    already: int
    leads_flagged: int
    leads_erased: int


def suppress(
    session: Session,
    domain_id: uuid.UUID,
    keys: Sequence[str],
    *,
    origin: str,
    created_by: uuid.UUID | None,
) -> Suppressed:
    """Add normalised `keys` to the list and apply the domain's action to matching leads."""
    added = suppressions.add(session, domain_id, keys, origin=origin, created_by=created_by)
    matching = suppressions.matching_leads(session, domain_id, keys)
    if not matching:
        return Suppressed(added.added, added.already, 0, 0)
    action = get_policy(session, domain_id)["suppression_action"]
    if action == "erase":
        done = erasure.erase_leads(
            session, domain_id, matching, erased_by=created_by, trigger="suppression"
        )
        return Suppressed(added.added, added.already, 0, done.leads)
    flagged = suppressions.flag_leads(session, matching)
    return Suppressed(added.added, added.already, flagged, 0)
