"""Jinja2 for the console: one environment, a few filters, and `page()` which gives every
template the signed-in user, their CSRF token and the navigation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from api.console.auth import ConsoleUser
from api.pagination import Page, PageParams
from api.problems import dashin_error_response
from models.job_statuses import LIVE_STATUSES, STATUSES
from runtime.errors import DashinError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

NAV = (
    ("overview", "Overview", "/console"),
    ("jobs", "Jobs", "/console/jobs"),
    ("sources", "Data sources", "/console/sources"),
    ("schedules", "Schedules", "/console/schedules"),
    ("leads", "Leads", "/console/leads"),
)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def duration(start: datetime | None, end: datetime | None) -> str:
    """`1h 02m`, `3m 07s`, `12s`; a running job counts up to now."""
    if start is None:
        return "—"
    seconds = int(((end or datetime.now(UTC)) - start).total_seconds())
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


templates.env.filters["when"] = _when
templates.env.globals["duration"] = duration
templates.env.globals["NAV"] = NAV
#: the statuses whose rows console.js keeps re-reading, from the declaration (models.job_statuses)
templates.env.globals["LIVE_STATUSES"] = list(LIVE_STATUSES)
#: a status chip's colour is its tone's, so a new status is styled by its declaration alone
templates.env.globals["STATUS_TONES"] = {s.name: s.tone for s in STATUSES}


def page(
    request: Request,
    name: str,
    user: ConsoleUser | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"user": user, "csrf": user.csrf if user else context.pop("csrf", ""), **context},
        status_code=status_code,
    )


def newest_first(cursor: str | None) -> PageParams:
    """A console list's page: 100 rows, newest first, no total count."""
    return PageParams(cursor, 100, "-created_at", False)


def list_page(
    request: Request, user: ConsoleUser, nav: str, listed: Page[Any], **context: Any
) -> HTMLResponse:
    """A list page, `<nav>.html`: the API page's items (as `<nav>`) and its next cursor."""
    context[nav] = listed.items
    return page(request, f"{nav}.html", user, nav=nav, next_cursor=listed.next_cursor, **context)


def flash(
    request: Request, status_code: int, message: str, job_id: str | None = None
) -> HTMLResponse:
    """A notice for `#flash`: what a button or form did, or why it was refused."""
    return templates.TemplateResponse(
        request,
        "_flash.html",
        {"message": message, "ok": status_code < 400, "job_id": job_id},
        status_code=status_code,
    )


def error_message(exc: DashinError) -> tuple[int, str]:
    """The status and `detail` (with field errors) the API answers for this error: one
    mapping, `api.problems`, so the console shows the API's own words."""
    problem = dashin_error_response(exc)
    body = json.loads(bytes(problem.body))
    fields = "; ".join(f"{e['field']}: {e['message']}" for e in body.get("errors") or [])
    return problem.status_code, str(body["detail"]) + (f" ({fields})" if fields else "")


def refused(request: Request, exc: Exception, job_id: str | None = None) -> HTMLResponse:
    """`flash` for an error of ours, or for pydantic's validation of a body (422)."""
    if isinstance(exc, DashinError):
        status_code, message = error_message(exc)
    else:
        status_code, message = 422, str(exc).splitlines()[0]
    return flash(request, status_code, message, job_id)
