"""Queries over leads: who sees which lead, filtered lists, the status flow, manual leads,
qualification, assignment and soft delete. Bulk actions and export live in `leads_bulk`.

Visibility (ARCHITECTURE §7) is one WHERE clause (`visible`), applied to every read and write,
so a lead a member may not see answers 404 exactly like a lead that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Select,
    Uuid,
    and_,
    any_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from models import row_security
from models.campaigns import Campaign
from models.clients_repo import ClientScope, campaign_ids_of, id_array
from models.leads import TAGGED, Lead, LeadKey, LeadSource, lead_search_text
from models.leads_sink import write_page
from models.notifications_repo import notify_users
from models.tenancy import Domain, Membership, User
from models.webhook_events import record_event
from records import LEAD_FIELDS, LeadRecord
from records.normalize import identity_keys
from runtime.errors import Conflict, FieldError, NotFound, ValidationFailed

MANUAL_PROVIDER = "manual"

#: Allowed moves. The flow is new → contacted → responded → qualified | rejected → converted;
#: skipping ahead is allowed, going back is not, only a qualified lead converts, and the
#: qualified/rejected decision may be revised.
NEXT_STATUSES: dict[str, frozenset[str]] = {
    "new": frozenset({"contacted", "responded", "qualified", "rejected"}),
    "contacted": frozenset({"responded", "qualified", "rejected"}),
    "responded": frozenset({"qualified", "rejected"}),
    "qualified": frozenset({"converted", "rejected"}),
    "rejected": frozenset({"qualified"}),
    "converted": frozenset(),
}


@dataclass(frozen=True)
class LeadScope:
    """Whose leads: a domain, for members (`restricted`) only their own, and for a viewer
    limited to clients (or a `?client_id=` filter) only those of these clients' campaigns."""

    domain_id: uuid.UUID
    user_id: uuid.UUID
    restricted: bool = False
    client_ids: ClientScope = None


@dataclass(frozen=True)
class LeadFilter:
    status: str | None = None
    priority: str | None = None
    campaign_id: uuid.UUID | None = None
    assigned_to: uuid.UUID | None = None
    data_source_id: uuid.UUID | None = None
    tag: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: str | None = None
    #: only these leads (`narrow`: a selective search or tag, resolved by its index)
    ids: tuple[uuid.UUID, ...] | None = None


def visible(scope: LeadScope) -> ColumnElement[bool]:
    """Live leads of the domain; for a member, those of own campaigns or assigned to them."""
    return and_(Lead.deleted_at.is_(None), _sight(scope))


def _sight(scope: LeadScope) -> ColumnElement[bool]:
    """`visible` without the deletion: whose leads these are (a deleted one's event too)."""
    clause = Lead.domain_id == scope.domain_id
    if scope.client_ids is not None:
        of_clients = campaign_ids_of(scope.domain_id, scope.client_ids)
        clause = and_(clause, Lead.campaign_id.in_(of_clients))
    if not scope.restricted:
        return clause
    own_campaigns = select(Campaign.id).where(
        Campaign.domain_id == scope.domain_id, Campaign.created_by == scope.user_id
    )
    return and_(clause, or_(Lead.assigned_to == scope.user_id, Lead.campaign_id.in_(own_campaigns)))


def newest_of_domain(session: Session, domain_name: str, limit: int) -> tuple[int, list[Lead]]:
    """(how many leads, the newest `limit` with emails first) of a domain by name: the demo's
    closing table."""
    domain_id = session.scalar(select(Domain.id).where(Domain.domain_name == domain_name))
    total = session.scalar(
        select(func.count()).select_from(Lead).where(Lead.domain_id == domain_id)
    )
    rows = session.scalars(
        select(Lead)
        .where(Lead.domain_id == domain_id)
        .order_by(Lead.email.is_(None), Lead.created_at.desc())
        .limit(limit)
    ).all()
    return int(total or 0), list(rows)


def ids_seen_by(
    session: Session, scope: LeadScope, lead_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of `lead_ids` that `scope` sees, deleted ones included (the live feed of a member
    or of a viewer limited to clients keeps only these, its `lead.deleted` events too)."""
    if not lead_ids:
        return set()
    return set(
        session.scalars(select(Lead.id).where(Lead.id == any_(id_array(lead_ids)), _sight(scope)))
    )


def _like_pattern(q: str) -> str:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filter_clauses(f: LeadFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for column, value in (
        (Lead.status, f.status),
        (Lead.priority, f.priority),
        (Lead.campaign_id, f.campaign_id),
        (Lead.assigned_to, f.assigned_to),
    ):
        if value is not None:
            clauses.append(column == value)
    if f.tag is not None:
        # implied by the containment, stated for the planner: the tag index is partial
        clauses.append(Lead.tags.contains([f.tag]))
        clauses.append(literal_column(f"leads.{TAGGED}", Boolean()))
    if f.created_from is not None:
        clauses.append(Lead.created_at >= f.created_from)
    if f.created_to is not None:
        clauses.append(Lead.created_at < f.created_to)
    if f.data_source_id is not None:
        clauses.append(
            exists().where(
                LeadSource.lead_id == Lead.id, LeadSource.data_source_id == f.data_source_id
            )
        )
    if f.q:
        # the trigram index on this very expression serves substring matches
        clauses.append(lead_search_text().like(_like_pattern(f.q), escape="\\"))
    if f.ids is not None:
        clauses.append(Lead.id == any_(bindparam("narrowed_ids", list(f.ids), type_=_UUIDS)))
    return clauses


_UUIDS = ARRAY(Uuid())

#: the most ids a search or tag resolves to before the query; past it the search is broad
SEARCH_HITS_CAP = 2_000


def narrow(db: Session | Connection, f: LeadFilter) -> LeadFilter:
    """`f` with a selective text search or tag resolved to the ids of its matches.

    With row-level security on, `LIKE` and `@>` are checked after the policy and lose their
    index (migration 0026): a search for one person would walk the whole domain. The
    `lead_search_hits` / `lead_tag_hits` functions find the ids by the index for the
    transaction's domain; up to `SEARCH_HITS_CAP` of them become an `id = ANY(...)` condition
    (the primary key's index), a broader match keeps its plain condition (many of the newest
    leads match it, so the list's own index finds a page soon). Without row-level security, or
    in a transaction that acts for no domain (the owner's, where the functions would find
    nothing), the planner already chooses well: `f` as it is."""
    if (not f.q and f.tag is None) or row_security.acting_for(db) is None:
        return f
    found: set[uuid.UUID] | None = None
    q, tag = f.q, f.tag
    if q:
        hits = _hits(db, func.lead_search_hits(_like_pattern(q), SEARCH_HITS_CAP + 1))
        if hits is not None:
            found, q = hits, None
    if tag is not None:
        hits = _hits(db, func.lead_tag_hits(tag, SEARCH_HITS_CAP + 1))
        if hits is not None:
            found, tag = (hits if found is None else found & hits), None
    if found is None:
        return f
    if f.ids is not None:
        found &= set(f.ids)
    return replace(f, q=q, tag=tag, ids=tuple(sorted(found)))


def _hits(db: Session | Connection, hits: Any) -> set[uuid.UUID] | None:
    """The ids a hits function returns, or None when there are more than the cap."""
    ids: set[uuid.UUID] = set(db.execute(select(hits)).scalars())
    return ids if len(ids) <= SEARCH_HITS_CAP else None


def leads_query(scope: LeadScope, f: LeadFilter | None = None) -> Select[Lead]:
    return select(Lead).where(visible(scope), *filter_clauses(f or LeadFilter()))


def list_query(
    scope: LeadScope, f: LeadFilter | None, columns: tuple[str, ...]
) -> tuple[Select[*tuple[Any, ...]], dict[str, Any] | None]:
    """`leads_query` as plain rows of `columns`, with the values of its bind parameters
    (None: a statement built for this request only, with its values inline).

    Rows, not ORM instances: loading 51 `Lead`s was a third of the list route's CPU. The
    statement is built once per shape (role restriction, filters given) with `visible` and
    `filter_clauses` themselves over bind parameters, so the rule cannot drift; the values
    come with each request. A tag or text search is built per request (rarer, and their values
    are not plain comparisons)."""
    f = f or LeadFilter()
    if f.tag is not None or f.q or f.ids is not None:
        table = Lead.__table__
        query = select(*(table.c[name] for name in columns)).where(
            visible(scope), *filter_clauses(f)
        )
        return query, None
    given = tuple(name for name in _BOUND_FILTERS if getattr(f, name) is not None)
    binds = {f"filter_{name}": getattr(f, name) for name in given}
    binds["scope_domain_id"], binds["scope_user_id"] = scope.domain_id, scope.user_id
    limited = scope.client_ids is not None
    if limited:
        binds["scope_client_ids"] = list(scope.client_ids or ())
    return _list_statement(scope.restricted, limited, given, columns), binds


#: Filters compared with one value each, so bindable once per shape.
_BOUND_FILTERS = (
    "status",
    "priority",
    "campaign_id",
    "assigned_to",
    "data_source_id",
    "created_from",
    "created_to",
)


@lru_cache(maxsize=256)
def _list_statement(
    restricted: bool, limited: bool, given: tuple[str, ...], columns: tuple[str, ...]
) -> Select[*tuple[Any, ...]]:
    placeholder: Any = bindparam  # stands in for the values in LeadScope / LeadFilter
    scope = LeadScope(
        placeholder("scope_domain_id", type_=Uuid()),
        placeholder("scope_user_id", type_=Uuid()),
        restricted=restricted,
        client_ids=placeholder("scope_client_ids", type_=ARRAY(Uuid())) if limited else None,
    )
    f = LeadFilter(**{name: placeholder(f"filter_{name}") for name in given})
    table = Lead.__table__
    return select(*(table.c[name] for name in columns)).where(visible(scope), *filter_clauses(f))


def get_lead(
    session: Session, scope: LeadScope, lead_id: uuid.UUID, *, for_update: bool = False
) -> Lead:
    query = leads_query(scope).where(Lead.id == lead_id)
    lead = session.scalar(query.with_for_update(of=Lead) if for_update else query)
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    return lead


class Provenance(TypedDict):
    """One provenance row of a lead, as the API shows it (`sources`)."""

    data_source_id: uuid.UUID | None
    job_id: uuid.UUID | None
    external_id: str | None


_SOURCE_TABLE = LeadSource.__table__
# One array parameter, not an IN list of 50: half the CPU of a list page's provenance query.
# Plain columns, not `LeadSource` instances: a page's provenance is read, never changed.
_SOURCES_OF = (
    select(
        _SOURCE_TABLE.c.lead_id,
        _SOURCE_TABLE.c.data_source_id,
        _SOURCE_TABLE.c.job_id,
        _SOURCE_TABLE.c.external_id,
    )
    .where(_SOURCE_TABLE.c.lead_id == any_(bindparam("lead_ids", type_=ARRAY(Uuid()))))
    .order_by(_SOURCE_TABLE.c.id)
)


def sources_of(session: Session, lead_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Provenance]]:
    """Provenance of many leads in one query (a page of a list, or one lead)."""
    found: dict[uuid.UUID, list[Provenance]] = {i: [] for i in lead_ids}
    rows = cast(
        "Iterable[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None, str | None]]",
        session.execute(_SOURCES_OF, {"lead_ids": lead_ids}),
    )
    for lead_id, data_source_id, job_id, external_id in rows:
        found[lead_id].append(
            {"data_source_id": data_source_id, "job_id": job_id, "external_id": external_id}
        )
    return found


def source_records(session: Session, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every provenance row of one lead with the provider's record as it was received (`raw`),
    oldest first. The caller has checked that the lead is visible to them."""
    t = _SOURCE_TABLE.c
    rows = session.execute(
        select(t.data_source_id, t.job_id, t.external_id, t.raw, t.created_at)
        .where(t.lead_id == lead_id)
        .order_by(t.id)
    )
    return [dict(row._mapping) for row in rows]


def check_transition(current: str, target: str) -> None:
    if target != current and target not in NEXT_STATUSES[current]:
        allowed = ", ".join(sorted(NEXT_STATUSES[current])) or "none (final)"
        raise Conflict(f"a {current} lead cannot become {target}; allowed next: {allowed}")


def check_campaign(session: Session, scope: LeadScope, campaign_id: uuid.UUID | None) -> None:
    """The campaign exists in the domain, and a member may only file leads under their own."""
    if campaign_id is None:
        return
    query = select(Campaign.id).where(
        Campaign.id == campaign_id,
        Campaign.domain_id == scope.domain_id,
        Campaign.deleted_at.is_(None),
    )
    if scope.restricted:
        query = query.where(Campaign.created_by == scope.user_id)
    if session.scalar(query) is None:
        message = "no such campaign of yours" if scope.restricted else "no such campaign"
        raise ValidationFailed(message, [FieldError("campaign_id", "not_found", message)])


def _owner_of(session: Session, domain_id: uuid.UUID, keys: list[str]) -> uuid.UUID | None:
    """The lead owning the highest-priority key, as the sink matches (ARCHITECTURE §6)."""
    owners = dict(
        session.execute(
            select(LeadKey.key, LeadKey.lead_id).where(
                LeadKey.domain_id == domain_id, LeadKey.key.in_(keys)
            )
        ).all()
    )
    return next((owners[k] for k in keys if k in owners), None)


def create_manual_lead(
    session: Session,
    scope: LeadScope,
    fields: dict[str, Any],
    *,
    external_id: str | None = None,
    campaign_id: uuid.UUID | None = None,
    extras: dict[str, Any] | None = None,
) -> tuple[Lead, bool]:
    """Write a hand-entered lead through the lead sink, so it dedupes exactly like scraped ones.

    Answers the lead and whether it is new. A match fills only empty fields and gains the tags
    sent; a match on a soft-deleted lead restores it. Members may not merge into a lead they
    cannot see (409, without revealing it).
    """
    record = LeadRecord(
        **{k: v for k, v in fields.items() if k in LEAD_FIELDS}, external_id=external_id
    )
    keys = identity_keys(record, MANUAL_PROVIDER)
    if not keys:
        message = "a lead needs an email, a LinkedIn profile URL or an external_id"
        raise ValidationFailed(message, [FieldError("email", "no_identity", message)])
    check_campaign(session, scope, campaign_id)
    existing = _owner_of(session, scope.domain_id, keys)
    if (
        existing is not None
        and scope.restricted
        and session.scalar(select(Lead.id).where(Lead.id == existing, visible(scope))) is None
    ):
        raise Conflict("a lead with this identity already exists in the domain")
    session.flush()
    raw_conn: Any = session.connection().connection.driver_connection
    written = write_page(
        raw_conn,
        domain_id=scope.domain_id,
        # lead_sources.data_source_id/job_id are nullable: a manual lead has neither
        data_source_id=None,
        job_id=None,
        provider=MANUAL_PROVIDER,
        records=[record],
        campaign_id=campaign_id,
    )
    if any(e.code == "suppressed" for e in written.errors):
        raise Conflict("this person is on the domain's suppression list")
    lead_id = _owner_of(session, scope.domain_id, keys)
    assert lead_id is not None, "the sink wrote no key for a record that has keys"
    lead = session.get_one(Lead, lead_id, populate_existing=True)
    extras = extras or {}
    if existing is None:
        for name, value in extras.items():
            setattr(lead, name, value)
        if scope.restricted and lead.campaign_id is None:
            lead.assigned_to = scope.user_id  # else the member could not see their own lead
    else:
        lead.deleted_at = None
        lead.tags = sorted(set(lead.tags) | set(extras.get("tags") or []))
    session.flush()
    session.refresh(lead)
    return lead, existing is None


def update_lead(session: Session, scope: LeadScope, lead: Lead, changes: dict[str, Any]) -> Lead:
    if "status" in changes:
        check_transition(lead.status, changes["status"])
    if "campaign_id" in changes:
        check_campaign(session, scope, changes["campaign_id"])
    for name, value in changes.items():
        setattr(lead, name, value)
    session.flush()
    session.refresh(lead)  # score and updated_at are set by triggers
    return lead


def qualify(
    session: Session,
    lead: Lead,
    *,
    score: int,
    criteria: dict[str, Any],
    notes: str | None,
    by: uuid.UUID,
) -> Lead:
    """Record the qualification; ≥ 4 makes the lead qualified, ≤ 2 rejected, 3 keeps it."""
    target = "qualified" if score >= 4 else "rejected" if score <= 2 else lead.status
    if lead.status == "converted":
        raise Conflict("a converted lead cannot be qualified again")
    check_transition(lead.status, target)
    lead.qualification = {
        "score": score,
        "criteria": criteria,
        "notes": notes,
        "qualified_by": str(by),
        "qualified_at": datetime.now(UTC).isoformat(),
    }
    lead.status = target
    session.flush()
    session.refresh(lead)
    return lead


def resolve_assignee(
    session: Session, domain_id: uuid.UUID, *, user_id: uuid.UUID | None, email: str | None
) -> uuid.UUID:
    """A manager or member of the domain, by id or email; anyone else is a 422."""
    query = select(Membership.user_id).join(User, User.id == Membership.user_id)
    query = query.where(
        Membership.domain_id == domain_id, Membership.role.in_(("manager", "member"))
    )
    if user_id is not None:
        query, field = query.where(User.id == user_id), "user_id"
    else:
        query, field = query.where(func.lower(User.email) == (email or "").lower()), "email"
    found = session.scalar(query)
    if found is None:
        message = "the assignee must be a manager or member of this domain"
        raise ValidationFailed(message, [FieldError(field, "not_a_member", message)])
    return found


def assign(
    session: Session,
    domain_id: uuid.UUID,
    lead_ids: list[uuid.UUID],
    assignee: uuid.UUID,
    by: uuid.UUID,
) -> None:
    """Assign leads and tell the assignee (one notification per call, not per lead)."""
    session.execute(
        update(Lead)
        .where(Lead.id.in_(lead_ids), Lead.domain_id == domain_id)
        .values(assigned_to=assignee)
    )
    if lead_ids and assignee != by:
        payload = {"lead_ids": [str(i) for i in lead_ids], "assigned_by": str(by)}
        notify_users(session, domain_id, [assignee], "lead.assigned", payload)
    if lead_ids:
        record_event(
            session,
            domain_id,
            "lead.assigned",
            lambda: {"lead_ids": lead_ids, "assigned_to": assignee, "assigned_by": by},
        )


def soft_delete(session: Session, lead_ids: list[uuid.UUID]) -> None:
    session.execute(
        update(Lead)
        .where(Lead.id.in_(lead_ids), Lead.deleted_at.is_(None))
        .values(deleted_at=func.now())
    )
