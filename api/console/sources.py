"""`/console/sources`: data sources with their health, Test connection, and CSV upload with a
progress bar (the browser's XHR upload events; the server streams the body into PostgreSQL
through the API's own upload route function)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console.auth import ConsoleUserDep, WriterUserDep
from api.console.jobs import error_message
from api.console.templating import page, templates
from api.deps import SessionDep, SettingsDep
from api.pagination import PageParams
from api.routes import data_sources as sources_api
from runtime.errors import DashinError

router = APIRouter(prefix="/sources")


@router.get("", response_class=HTMLResponse)
def sources_page(
    request: Request, session: SessionDep, user: ConsoleUserDep, cursor: str | None = None
) -> HTMLResponse:
    listed = sources_api.list_data_sources(
        session, user.principal, PageParams(cursor, 100, "-created_at", False)
    )
    return page(
        request,
        "sources.html",
        user,
        nav="sources",
        sources=listed.items,
        next_cursor=listed.next_cursor,
    )


@router.post("/{source_id}/test", response_class=HTMLResponse)
async def test_connection(request: Request, source_id: uuid.UUID, user: WriterUserDep) -> Response:
    """The connector's `check`: ok, the typed reason when not, and up to five sample leads."""
    try:
        result = await sources_api.test_data_source(source_id, user.principal)
    except DashinError as exc:
        status_code, message = error_message(exc)
        return templates.TemplateResponse(
            request, "_flash.html", {"message": message, "ok": False}, status_code=status_code
        )
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
