"""Queries over clients: CRUD within a domain, checking client ids a request names, and which
campaigns a viewer limited to clients sees.

A limited viewer's scope is a set of client ids; every read of campaigns, leads, links and
analytics narrows to the campaigns of those clients (`campaign_ids_of`), so what lies outside
answers 404 exactly like what does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Uuid, any_, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.base import found
from models.campaigns import Campaign
from models.clients import Client
from models.tenancy import Membership
from runtime.errors import Conflict, FieldError, ValidationFailed

#: a scope of clients: None is every client (and campaigns of none); a tuple, only these
ClientScope = tuple[uuid.UUID, ...] | None


def id_array(ids: Sequence[uuid.UUID] | ColumnElement[Any]) -> ColumnElement[Any]:
    """`ids` as one uuid[] value (or a bound parameter standing for one, passed through)."""
    if isinstance(ids, ColumnElement):
        return ids
    return literal(list(ids), ARRAY(Uuid()))


def campaign_ids_of(
    domain_id: Any, client_ids: Sequence[uuid.UUID] | ColumnElement[Any]
) -> Select[uuid.UUID]:
    """The ids of the domain's campaigns (deleted ones too: their leads are filtered on their
    own) that belong to one of `client_ids`; none for an empty list."""
    return select(Campaign.id).where(
        Campaign.domain_id == domain_id, Campaign.client_id == any_(id_array(client_ids))
    )


def client_campaigns(
    session: Session, domain_id: uuid.UUID, client_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """The ids of `campaign_ids_of`, read (the live feed of a viewer limited to clients)."""
    return set(session.scalars(campaign_ids_of(domain_id, client_ids)))


def narrowed(scope: ClientScope, client_id: uuid.UUID | None) -> ClientScope:
    """`scope` further narrowed by a `?client_id=` filter: a client outside it gives nothing."""
    if client_id is None:
        return scope
    if scope is None or client_id in scope:
        return (client_id,)
    return ()


def clients_query(
    domain_id: uuid.UUID, *, scope: ClientScope = None, q: str | None = None
) -> Select[Client]:
    query = select(Client).where(Client.domain_id == domain_id)
    if scope is not None:
        query = query.where(Client.id == any_(id_array(scope)))
    if q:
        query = query.where(Client.name.icontains(q, autoescape=True))
    return query


def get_client(
    session: Session, domain_id: uuid.UUID, client_id: uuid.UUID, *, scope: ClientScope = None
) -> Client:
    query = clients_query(domain_id, scope=scope).where(Client.id == client_id)
    return found(session.scalar(query), "client", client_id)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a client named {name!r} already exists in this domain")


def create_client(session: Session, domain_id: uuid.UUID, values: dict[str, Any]) -> Client:
    client = Client(domain_id=domain_id, **values)
    try:
        with session.begin_nested():
            session.add(client)
            session.flush()
    except IntegrityError as exc:
        raise _name_taken(values["name"]) from exc
    session.refresh(client)
    return client


def update_client(session: Session, client: Client, changes: dict[str, Any]) -> Client:
    try:
        with session.begin_nested():
            for field, value in changes.items():
                setattr(client, field, value)
            session.flush()
    except IntegrityError as exc:
        raise _name_taken(changes.get("name", client.name)) from exc
    session.refresh(client)  # updated_at is set by a trigger
    return client


def delete_client(session: Session, client: Client) -> None:
    """Delete a client that no live campaign belongs to (409 otherwise: a campaign silently
    losing its client would also drop out of its limited viewers' sight). Viewers limited to
    it lose it from their list; a list left empty still limits them (to nothing)."""
    live = session.scalar(
        select(func.count())
        .select_from(Campaign)
        .where(Campaign.client_id == client.id, Campaign.deleted_at.is_(None))
    )
    if live:
        raise Conflict(
            f"the client still has {live} campaign(s): move them to another client "
            "(PATCH /campaigns/{id} with client_id) or delete them first"
        )
    session.execute(
        update(Membership)
        .where(
            Membership.domain_id == client.domain_id,
            literal(client.id, Uuid()) == any_(Membership.client_ids),
        )
        .values(client_ids=func.array_remove(Membership.client_ids, client.id))
    )
    session.delete(client)
    session.flush()


def check_clients(
    session: Session,
    domain_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
    *,
    field: str = "client_ids",
    scope: ClientScope = None,
) -> None:
    """422 naming `field` unless every id is a client of the domain (and of `scope`).

    The answer says which positions of the list are wrong, never which ids: an id of another
    domain's client must read exactly like an id that does not exist."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return
    known = set(
        session.scalars(
            clients_query(domain_id, scope=scope)
            .with_only_columns(Client.id)
            .where(Client.id == any_(id_array(wanted)))
        )
    )
    bad = [i for i, client_id in enumerate(ids) if client_id not in known]
    if not bad:
        return
    if field == "client_ids":
        where = ", ".join(f"{field}[{i}]" for i in bad)
        message = f"not a client of this domain: {where}"
    else:
        message = "not a client of this domain"
    raise ValidationFailed(message, [FieldError(field, "not_found", message)])
