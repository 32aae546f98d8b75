"""`/console/sources`: data sources with their health, create/edit forms generated from each
connector's `config_schema` (secrets write-only), Test connection, and CSV upload with a
progress bar (the browser's XHR upload events; the server streams the body into PostgreSQL
through the API's own upload route function)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console import source_forms
from api.console.auth import ConsoleUser, ConsoleUserDep, ManagerUserDep, WriterUserDep
from api.console.templating import list_page, newest_first, page, refused, templates
from api.deps import SessionDep, SettingsDep
from api.routes import connectors as connectors_api
from api.routes import data_sources as sources_api
from api.schemas.data_sources import DataSourceCreate, DataSourceUpdate
from runtime.errors import DashinError, ValidationFailed

router = APIRouter(prefix="/sources")


@router.get("", response_class=HTMLResponse)
def sources_page(
    request: Request, session: SessionDep, user: ConsoleUserDep, cursor: str | None = None
) -> HTMLResponse:
    listed = sources_api.list_data_sources(session, user.principal, newest_first(cursor))
    return list_page(request, user, "sources", listed)


@router.post("/{source_id}/test", response_class=HTMLResponse)
async def test_connection(request: Request, source_id: uuid.UUID, user: WriterUserDep) -> Response:
    """The connector's `check`: ok, the typed reason when not, and up to five sample leads."""
    try:
        result = await sources_api.test_data_source(source_id, user.principal)
    except DashinError as exc:
        return refused(request, exc)
    return templates.TemplateResponse(request, "_check.html", {"check": result})


@router.post("/{source_id}/files")
async def upload(
    source_id: uuid.UUID, request: Request, user: WriterUserDep, settings: SettingsDep
) -> Response:
    """Multipart field `file`, CSRF token in the `X-CSRF-Token` header (the body is streamed,
    never parsed as a form). Answers the API's JSON (`{"id": file_id, ...}`)."""
    result = await sources_api.upload_file(source_id, request, user.principal, settings)
    if isinstance(result, Response):
        return result
    return Response(result.model_dump_json(), status_code=201, media_type="application/json")


# --- create and edit, from the connector's config_schema ----------------------------------------


def _schemas(user: ConsoleUser) -> dict[str, dict[str, Any]]:
    listed = connectors_api.list_connectors(user.principal)
    return {c.type: c.config_schema for c in listed.items}


@router.get("/new", response_class=HTMLResponse)
def new_source_page(
    request: Request, user: ConsoleUserDep, type: str = "csv", error: str = ""
) -> HTMLResponse:
    schemas = _schemas(user)
    chosen = type if type in schemas else "csv"
    return page(
        request,
        "source_form.html",
        user,
        nav="sources",
        types=sorted(schemas),
        chosen=chosen,
        fields=source_forms.fields(schemas[chosen]),
        source=None,
        config={},
        secrets_set=[],
    )


@router.post("/new", response_class=HTMLResponse)
async def create_source(
    request: Request, session: SessionDep, user: ManagerUserDep, settings: SettingsDep
) -> Response:
    form = await request.form()
    schemas = _schemas(user)
    type_ = str(form.get("type", ""))
    try:
        if type_ not in schemas:
            raise ValidationFailed(f"unknown connector type {type_!r}")
        config = source_forms.read_config(form, source_forms.fields(schemas[type_]))
        body = DataSourceCreate(type=type_, name=str(form.get("name", "")).strip(), config=config)
        created = await run_in_threadpool(
            sources_api.create_data_source, body, session, user.principal, settings
        )
    except (DashinError, ValueError) as exc:
        return refused(request, exc)
    return _go(request, f"/console/sources#source-{created.id}")


@router.get("/{source_id}/edit", response_class=HTMLResponse)
def edit_source_page(
    request: Request, source_id: uuid.UUID, session: SessionDep, user: ConsoleUserDep
) -> HTMLResponse:
    source = sources_api.get_data_source(source_id, session, user.principal)
    schema = _schemas(user).get(source.type, {})
    return page(
        request,
        "source_form.html",
        user,
        nav="sources",
        types=[source.type],
        chosen=source.type,
        fields=source_forms.fields(schema),
        source=source,
        config=source.config,
        secrets_set=source.secrets_set,
    )


@router.post("/{source_id}/edit", response_class=HTMLResponse)
async def update_source(
    request: Request, source_id: uuid.UUID, session: SessionDep, user: ManagerUserDep
) -> Response:
    form = await request.form()
    try:
        source = await run_in_threadpool(
            sources_api.get_data_source, source_id, session, user.principal
        )
        schema = _schemas(user).get(source.type, {})
        config = source_forms.read_config(form, source_forms.fields(schema), source.config)
        name = str(form.get("name", "")).strip() or None
        body = DataSourceUpdate(name=name, config=config)
        await run_in_threadpool(
            sources_api.update_data_source, source_id, body, session, user.principal
        )
    except (DashinError, ValueError) as exc:
        return refused(request, exc)
    return _go(request, f"/console/sources#source-{source_id}")


def _go(request: Request, url: str) -> Response:
    """Back to the list: a redirect, or for htmx an `HX-Redirect` (it would swap the page in)."""
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
