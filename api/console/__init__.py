"""The operator console at `/console`: server-rendered pages (Jinja2) over the API's own route
functions, with vendored htmx for partial updates and uPlot for charts (served from
`static/vendor/`, no CDN), kept live by the API's SSE streams. See docs/console.md.

    auth.py        the session cookie read into the API's `Principal`; CSRF checks
    signin.py      sign in (password or API key), sign out, switch domain
    jobs.py        jobs table, job page, job buttons
    sources.py     data sources with health, schema-driven forms, test connection, CSV upload
    source_forms.py  a connector's config_schema → form fields → config (secrets write-only)
    pages.py       overview (charts), schedules, leads
    templating.py  Jinja2 environment, `page()`, and the notices (`flash`, `refused`)
    templates/, static/   the pages; console.js (live updates), vendor/ (htmx, uPlot + licences)
"""

from __future__ import annotations

import importlib
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.console.auth import SignInRequired

PREFIX = "/console"
PAGES = ("signin", "jobs", "sources", "pages")
STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the console's pages and static files on the API app (same process and port)."""
    for name in PAGES:
        module = importlib.import_module(f"api.console.{name}")
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(SignInRequired, _to_sign_in)


async def _to_sign_in(request: Request, _exc: Exception) -> Response:
    """A page asks for a sign-in; an htmx or script request is told where to go instead."""
    target = f"{PREFIX}/login"
    path = request.url.path
    if request.method == "GET" and path.startswith(PREFIX) and path != target:
        target += "?next=" + path
    if request.headers.get("HX-Request"):
        return JSONResponse({"detail": "sign in"}, status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
