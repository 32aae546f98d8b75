"""`/docs` (Swagger UI) and `/redoc` (ReDoc) served from files shipped in the package.

FastAPI's defaults load both UIs from a CDN, so the pages are blank offline or behind a strict
proxy. The assets live in `api/docs_static/` (vendored from npm, pinned; versions, integrity and
licences in its `VENDORED.md`) and are served under `/docs-static/`; the HTML comes from
FastAPI's own `get_swagger_ui_html` / `get_redoc_html`, pointed at those local URLs.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("docs_static")
STATIC_URL = "/docs-static"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve the assets and the two pages (create the app with `docs_url=redoc_url=None`)."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="docs-static")
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/favicon-32x32.png",
            with_google_fonts=False,
        )
