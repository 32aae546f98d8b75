"""Clients: the agency's customers its campaigns are for (issue 18, item 1).

Managers create, change and delete clients; every role reads them. A viewer limited to clients
reads only their own, without the agency's `notes`; another client answers 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from api.audit import AuditedIdempotentRoute
from api.deps import ManagerDep, Principal, ReaderDep, SessionDep
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.clients import ClientCreate, ClientOut, ClientUpdate
from api.schemas.common import NO_NUL_PATTERN
from models import clients_repo
from models.clients import Client
from runtime.errors import FieldError, ValidationFailed

router = APIRouter(prefix="/clients", tags=["clients"], route_class=AuditedIdempotentRoute)


def _out(client: Client, principal: Principal) -> ClientOut:
    out = ClientOut.model_validate(client)
    return out if principal.client_ids is None else out.model_copy(update={"notes": None})


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, 409, 422))
def create_client(body: ClientCreate, principal: ManagerDep, session: SessionDep) -> ClientOut:
    """Add a client; its name is unique in the domain, whatever its case (409)."""
    client = clients_repo.create_client(session, principal.domain_id, body.model_dump())
    return _out(client, principal)


@router.get("", responses=problem_responses(422))
def list_clients(
    principal: ReaderDep,
    session: SessionDep,
    page: PageParamsDep,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL_PATTERN, description="Part of the name")
    ] = None,
) -> Page[ClientOut]:
    """The domain's clients (a limited viewer: their own), a page at a time."""
    rows = paginate(
        session,
        clients_repo.clients_query(principal.domain_id, scope=principal.client_ids, q=q),
        page,
        sortable={"created_at": Client.created_at, "name": Client.name},
        id_column=Client.id,
    )
    return rows.to_page([_out(c, principal) for c in rows.rows])


@router.get("/{client_id}", responses=problem_responses(404))
def get_client(client_id: uuid.UUID, principal: ReaderDep, session: SessionDep) -> ClientOut:
    """One client."""
    client = clients_repo.get_client(
        session, principal.domain_id, client_id, scope=principal.client_ids
    )
    return _out(client, principal)


@router.patch("/{client_id}", responses=problem_responses(403, 404, 409, 422))
def update_client(
    client_id: uuid.UUID, body: ClientUpdate, principal: ManagerDep, session: SessionDep
) -> ClientOut:
    """Change the fields sent; `name` cannot be null."""
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        message = "cannot be null"
        raise ValidationFailed(message, [FieldError("name", "null_not_allowed", message)])
    client = clients_repo.get_client(session, principal.domain_id, client_id)
    return _out(clients_repo.update_client(session, client, changes), principal)


@router.delete(
    "/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
)
def delete_client(client_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> None:
    """Delete a client no live campaign belongs to (409 otherwise); viewers limited to it lose
    it from their list (one left with none reads nothing)."""
    client = clients_repo.get_client(session, principal.domain_id, client_id)
    clients_repo.delete_client(session, client)
