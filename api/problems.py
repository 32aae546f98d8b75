"""RFC 9457 problem details: every error the API answers has one shape.

One exception handler maps the `runtime.errors` tree to statuses, so routes raise domain errors
and never build responses for failures themselves::

    NotFound → 404    Conflict → 409 (InvalidTransition adds `job_status`)    PermissionDenied → 403
    ValidationFailed → 422 (`errors: [{field, code, message}]`)    NotAuthenticated → 401
    TooManyRequests → 429 (+ Retry-After)    TransientFailure → 503
    a statement cancelled by the API's statement_timeout → 503 `statement_timeout`
    a request past its deadline → 503 `request_timeout` (`api.request_deadline`)
    ConfigurationError → 500 with a safe message    anything else → 500 "internal error"

FastAPI's own request validation errors are converted to the same 422 shape with clean dotted
field paths (`email`, `items.0.name`: the `body` location prefix is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg.errors import QueryCanceled
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import examples as ex
from api.schemas.common import example
from runtime.errors import (
    ClientError,
    ConfigurationError,
    Conflict,
    DashinError,
    FieldError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    TransientFailure,
    ValidationFailed,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("api.problems")


class NotAuthenticated(ClientError):
    """No credentials, or credentials we do not accept (401, with a Bearer challenge)."""

    code = "unauthenticated"


class TooManyRequests(ClientError):
    """A rate limit refused the request; `retry_after` seconds until a slot frees up."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


_FIELD_ERROR_EXAMPLE = {
    "field": "email",
    "code": "value_error",
    "message": "value is not a valid email address: an email address must have an @-sign",
}


class FieldErrorOut(BaseModel):
    model_config = example(_FIELD_ERROR_EXAMPLE)

    field: str
    code: str
    message: str


class Problem(BaseModel):
    """The documented error body (OpenAPI); responses are built by `problem_response`."""

    model_config = example(
        {
            "type": "urn:dashin:problem:validation",
            "title": "Validation failed",
            "status": 422,
            "detail": "the request is invalid",
            "errors": [_FIELD_ERROR_EXAMPLE],
        },
        {
            "type": "urn:dashin:problem:invalid_transition",
            "title": "Invalid transition",
            "status": 409,
            "detail": f"cannot start job {ex.JOB_ID} while it is running",
            "job_status": "running",
        },
    )

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldErrorOut] | None = None
    job_status: str | None = None


# Status and title per error class, checked in order: a subclass comes before its parent.
_STATUSES: tuple[tuple[type[DashinError], int, str], ...] = (
    (InvalidTransition, 409, "Invalid transition"),
    (Conflict, 409, "Conflict"),
    (NotFound, 404, "Not found"),
    (PermissionDenied, 403, "Forbidden"),
    (ValidationFailed, 422, "Validation failed"),
    (NotAuthenticated, 401, "Unauthorized"),
    (TooManyRequests, 429, "Too many requests"),
    (TransientFailure, 503, "Service unavailable"),
    (ConfigurationError, 500, "Server misconfigured"),
)


def problem_type(code: str) -> str:
    return f"urn:dashin:problem:{code}"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    errors: Sequence[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [{"field": e.field, "code": e.code, "message": e.message} for e in errors]
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def dashin_error_response(exc: DashinError) -> JSONResponse:
    """The one mapping from the error tree to a problem response."""
    match = next((row for row in _STATUSES if isinstance(exc, row[0])), None)
    if match is None:
        return internal_error_response(exc)
    _, status, title = match
    detail = exc.message
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    errors: list[FieldError] | None = None
    if isinstance(exc, ConfigurationError):
        # Configuration messages name variables an operator must fix; log them, answer vaguely.
        log.error("api.configuration_error", error=exc.message)
        detail = "the server is misconfigured; see its logs"
    elif isinstance(exc, InvalidTransition):
        extra["job_status"] = exc.current_status
    elif isinstance(exc, ValidationFailed):
        errors = exc.errors
    elif isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    return problem_response(
        status, title, detail, code=exc.code, errors=errors, extra=extra, headers=headers or None
    )


def internal_error_response(exc: BaseException) -> JSONResponse:
    """The 500 problem for an error nobody handled; the one place it is logged (one line, with
    a plain bounded traceback: `runtime.logging`)."""
    log.error("api.unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return problem_response(500, "Internal error", "internal error", code="internal")


def field_path(loc: Sequence[int | str]) -> str:
    """`("body", "user", "email")` → `user.email`; query, path and header names stay bare."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        head = parts.pop(0)
        if not parts:
            return str(head)
    return ".".join(str(p) for p in parts)


def request_validation_errors(exc: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(field=field_path(err.get("loc", ())), code=err["type"], message=err["msg"])
        for err in exc.errors()
    ]


async def _on_dashin_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DashinError)
    return dashin_error_response(exc)


async def _on_request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = request_validation_errors(exc)
    return problem_response(
        422, "Validation failed", "the request is invalid", code="validation", errors=errors
    )


async def _on_http_exception(_: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown route 404, 405) in the problem shape too."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    return problem_response(
        exc.status_code, title, str(exc.detail), code=code, headers=dict(exc.headers or {}) or None
    )


async def _on_database_error(_: Request, exc: Exception) -> JSONResponse:
    """A statement past the API's `statement_timeout` is a 503 to retry later, not a bug."""
    assert isinstance(exc, DBAPIError)
    if isinstance(exc.orig, QueryCanceled):
        log.warning("api.statement_timeout", error_type=type(exc.orig).__name__)
        return problem_response(
            503,
            "Service unavailable",
            "the request took too long and was cancelled; retry later or narrow it",
            code="statement_timeout",
            headers={"Retry-After": "5"},
        )
    return internal_error_response(exc)


async def _on_unhandled(_: Request, exc: Exception) -> JSONResponse:
    return internal_error_response(exc)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DashinError, _on_dashin_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(Exception, _on_unhandled)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the problem statuses it answers besides 401 and 422 (which
    `document_problems` adds wherever they apply)."""
    return {status: {"description": "Problem details"} for status in statuses}


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document tell the truth about errors: every 4xx/5xx response is
    `application/problem+json` with the `Problem` schema (FastAPI documents its own 422 shape,
    which our handler replaces), and every operation that needs credentials documents 401."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for name in _VALIDATION_SCHEMAS:
        components.pop(name, None)
    problem_content = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                responses.setdefault("401", {"description": "Not authenticated"})
            if any(p.get("name") == "Dashin-Domain" for p in operation.get("parameters", [])):
                responses.setdefault("404", {"description": "Domain not found"})
            for code, response in responses.items():
                if code[:1] in ("4", "5"):
                    response["content"] = problem_content
                    if code == "422":
                        response["description"] = "Validation failed"
    return openapi
