"""The audit trail of the API's changes, written in one place: the route class.

A router that changes a domain's entities declares `route_class=AuditedRoute` (or
`AuditedIdempotentRoute`), and every POST, PUT, PATCH and DELETE route on it is audited with
no code in the route: the endpoint is wrapped so that, after it returns and before the
request's session commits (`api.deps.SessionDep`), one `models.audit` row joins the same
transaction. A route that raises leaves no row (its transaction rolls back), and a committed
change always has its row. What the row says is read off the route and the request:

    entity      the last collection segment of the path (`COLLECTIONS`): `/domains/{domain_id}
                /members/{user_id}` is a `member`, `/campaigns/{campaign_id}/links` a `link`
    entity id   the path parameter after it, else the `id` of what the route answers (creates)
    action      a literal segment after it (`/jobs/{job_id}/start` → `start`, `/leads/bulk` →
                `bulk`), else by method: POST `create`, PUT/PATCH `update`, DELETE `delete`
    fields      the NAMES of the body fields the client set (`model_fields_set`), one level
                into objects (`config.api_key`); never a value, so neither personal data nor a
                secret reaches the trail
    actor       the user, the API key they used, their role in the domain (`admin` for a
                platform admin acting as support)
    where from  the request id (`X-Request-ID`, `api.request_context`)

Lead, campaign and data source changes also become one event each in the domain's live feed
(`api.change_events`), in the same transaction.

A route that knows better (a bulk request's count and action, a domain the path does not name)
says so with `note(session, ...)` before it returns. Routes that change nothing (`.../test`) are
not audited; async routes are not wrapped (`data-sources/{id}/files` streams an upload in its own
transactions).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from fastapi.dependencies.utils import get_typed_return_annotation, get_typed_signature
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from api import change_events
from api.deps import AuthenticatedUser, CurrentUser, Principal, SessionDep
from api.idempotency import IdempotentRoute
from models import audit
from runtime.logging import current_request_id

#: path segment → entity type; the last one in a path names what the route changes
COLLECTIONS = {
    "domains": "domain",
    "members": "member",
    "invitations": "invitation",
    "api-keys": "api_key",
    "clients": "client",
    "campaigns": "campaign",
    "links": "link",
    "leads": "lead",
    "data-sources": "data_source",
    "schedules": "schedule",
    "jobs": "job",
    "webhooks": "webhook",
}
#: actions that change nothing: not audited
NOT_CHANGES = frozenset({"test"})
_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
_SESSION_ARG = "audit_session__"
_CALLER_ARG = "audit_caller__"
_NOTE_KEY = "audit_note"


@dataclass(frozen=True)
class Target:
    """What a route changes, read off its path and method."""

    entity_type: str
    id_param: str | None
    action: str


def target_of(path: str, method: str) -> Target | None:
    """The audited target of `method path`, or None when the route changes no entity."""
    if method not in _BY_METHOD:
        return None
    entity: str | None = None
    id_param: str | None = None
    literals: list[str] = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            id_param = segment[1:-1].split(":")[0]
        elif segment in COLLECTIONS:
            entity, id_param, literals = COLLECTIONS[segment], None, []
        elif entity is not None:
            literals.append(segment)
    if entity is None:
        return None
    action = "_".join(literals) or _BY_METHOD[method]
    return None if action in NOT_CHANGES else Target(entity, id_param, action)


@dataclass(frozen=True)
class Note:
    """What a route tells the audit that its path and body cannot (all optional)."""

    action: str | None = None
    count: int | None = None
    fields: Sequence[str] | None = None
    domain_id: uuid.UUID | None = None
    entity_id: uuid.UUID | None = None


def note(
    session: Session,
    *,
    action: str | None = None,
    count: int | None = None,
    fields: Sequence[str] | None = None,
    domain_id: uuid.UUID | None = None,
    entity_id: uuid.UUID | None = None,
) -> None:
    """Refine this request's audit row (a bulk request's count, a domain the path lacks)."""
    session.info[_NOTE_KEY] = Note(action, count, fields, domain_id, entity_id)


def field_names(model: BaseModel) -> Iterator[str]:
    """The names of the fields the client set, one level into objects; never values."""
    for name in sorted(model.model_fields_set):
        value = getattr(model, name, None)
        if isinstance(value, BaseModel) and value.model_fields_set:
            yield from (f"{name}.{inner}" for inner in sorted(value.model_fields_set))
        elif isinstance(value, dict) and value:
            yield from (f"{name}.{key}" for key in sorted(value) if isinstance(key, str))
        else:
            yield name


def _uuid(value: object) -> uuid.UUID | None:
    return value if isinstance(value, uuid.UUID) else None


def _count(result: object) -> int:
    """Rows a request changed, from its answer: a list, or a bulk answer's `succeeded`."""
    if isinstance(result, list):
        return len(result)
    succeeded = getattr(result, "succeeded", None)
    return succeeded if isinstance(succeeded, int) else 1


def _record(
    session: Session,
    caller: AuthenticatedUser,
    target: Target,
    arguments: dict[str, Any],
    bodies: Sequence[str],
    result: object,
) -> None:
    said = session.info.pop(_NOTE_KEY, None) or Note()
    principal = next((v for v in arguments.values() if isinstance(v, Principal)), None)
    entity_id = (
        said.entity_id
        or _uuid(arguments.get(target.id_param or ""))
        or _uuid(getattr(result, "id", None))
    )
    domain_id = (
        said.domain_id
        or (principal.domain_id if principal else None)
        or _uuid(arguments.get("domain_id"))
        or _uuid(getattr(result, "domain_id", None))
        or (entity_id if target.entity_type == "domain" else None)
    )
    fields = said.fields
    if fields is None:
        models = [arguments[n] for n in bodies if isinstance(arguments.get(n), BaseModel)]
        fields = [name for body in models for name in field_names(body)]
    count = said.count if said.count is not None else _count(result)
    action = said.action or target.action
    if action == "bulk":  # `{action: update|delete, ...}` bodies: say which
        kind = next((getattr(arguments.get(n), "action", None) for n in bodies), None)
        action = f"bulk_{kind}" if isinstance(kind, str) else action
    change = audit.Change(
        domain_id=domain_id,
        entity_type=target.entity_type,
        entity_id=entity_id,
        action=action,
        fields=fields,
        count=count,
    )
    audit.record(
        session,
        audit.Actor(
            user_id=caller.user_id,
            api_key_id=caller.api_key_id,
            role=principal.role if principal else None,
            is_admin=caller.is_admin,
        ),
        change,
        current_request_id(),
    )
    change_events.publish(session, change, result)  # last: see models.domain_events


def audited(endpoint: Callable[..., Any], target: Target) -> Callable[..., Any]:
    """`endpoint`, recording its change in the request's transaction once it returns.

    The wrapper's signature is the endpoint's (annotations resolved, since they were strings
    in the route's module) plus the request's session and caller: both are dependencies
    FastAPI already solves for the route, so they cost nothing more."""
    signature = get_typed_signature(endpoint)
    extra = [
        inspect.Parameter(_SESSION_ARG, inspect.Parameter.KEYWORD_ONLY, annotation=SessionDep),
        inspect.Parameter(_CALLER_ARG, inspect.Parameter.KEYWORD_ONLY, annotation=CurrentUser),
    ]

    #: names of the request-body parameters, filled in by `AuditedRoute` once FastAPI has
    #: analysed the route (other pydantic arguments, such as the settings, are not bodies)
    bodies: list[str] = []

    @wraps(endpoint)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session: Session = kwargs.pop(_SESSION_ARG)
        caller: AuthenticatedUser = kwargs.pop(_CALLER_ARG)
        session.info.pop(_NOTE_KEY, None)
        result = endpoint(*args, **kwargs)
        if not (isinstance(result, Response) and result.status_code >= 400):
            _record(session, caller, target, kwargs, bodies, result)
        return result

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *extra],
        return_annotation=get_typed_return_annotation(endpoint) or inspect.Signature.empty,
    )
    wrapper.__audited__ = bodies  # type: ignore[attr-defined]
    return wrapper


def _wrap(path: str, endpoint: Callable[..., Any], kwargs: dict[str, Any]) -> Callable[..., Any]:
    if hasattr(endpoint, "__audited__") or inspect.iscoroutinefunction(endpoint):
        return endpoint  # already wrapped (a parent router re-creates routes), or async
    for method in kwargs.get("methods") or ():
        target = target_of(path, str(method).upper())
        if target is not None:
            return audited(endpoint, target)
    return endpoint


class AuditedRoute(APIRoute):
    """A route whose changes are audited (module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _wrap(path, endpoint, kwargs), **kwargs)
        bodies = getattr(self.endpoint, "__audited__", None)
        if bodies is not None:
            bodies[:] = [param.name for param in self.dependant.body_params]


class AuditedIdempotentRoute(AuditedRoute, IdempotentRoute):
    """An audited route that also honours `Idempotency-Key` (`api.idempotency`)."""
