"""API keys: credentials for scripts, owned by the caller and scoped to the current domain.

The key is shown once, at creation; only its SHA-256 hash is stored. A key acts with its owner's
role in its domain, so removing the owner from the domain disables it too.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from api import audit, security
from api.audit import AuditedRoute
from api.deps import CurrentUser, ReaderDep, SessionDep
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.auth import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from models import tenancy_repo
from models.tenancy import ApiKey
from runtime.errors import PermissionDenied

router = APIRouter(prefix="/api-keys", tags=["api keys"], route_class=AuditedRoute)


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, 422))
def create_api_key(body: ApiKeyCreate, principal: ReaderDep, session: SessionDep) -> ApiKeyCreated:
    """Create a key for the current domain. Keys cannot mint keys: a leaked key stays revocable.

    A key is revoked when its owner's password is reset or they leave the domain, unless it is
    a `service` key (managers only), which survives the reset.
    """
    if principal.api_key_id is not None:
        raise PermissionDenied("API keys cannot create API keys; log in with a password")
    if body.service and not principal.has_role("manager"):
        raise PermissionDenied("only managers create service keys (they survive a password reset)")
    secret = security.new_api_key()
    key = tenancy_repo.create_api_key(
        session,
        user_id=principal.user_id,
        domain_id=principal.domain_id,
        name=body.name,
        prefix=secret.shown_prefix,
        key_hash=secret.hash,
        service=body.service,
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret.value)


@router.get("", responses=problem_responses(401))
def list_api_keys(caller: CurrentUser, session: SessionDep, page: PageParamsDep) -> Page[ApiKeyOut]:
    """The caller's live keys, in every domain."""
    rows = paginate(
        session,
        tenancy_repo.api_keys_query(caller.user_id),
        page,
        sortable={"created_at": ApiKey.created_at, "name": ApiKey.name},
        id_column=ApiKey.id,
    )
    return rows.to_page([ApiKeyOut.model_validate(key) for key in rows.rows])


@router.delete(
    "/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
def revoke_api_key(key_id: uuid.UUID, caller: CurrentUser, session: SessionDep) -> None:
    """Revoke one of the caller's keys (platform admins: anyone's)."""
    domain_id = tenancy_repo.revoke_api_key(
        session, key_id, None if caller.is_admin else caller.user_id
    )
    audit.note(session, domain_id=domain_id)
