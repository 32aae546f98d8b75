"""The application factory. `create_app()` wires routers and handlers and touches no service:
the engine and Redis client are built on the first request that needs them.

    /api/v1/...                 resources (one router per module listed in `api.routes.ROUTERS`)
    /api/v1/openapi.json, /docs, /redoc  the OpenAPI document and its UIs (served offline)
    /healthz, /readyz           ops endpoints at the root
    /console                    the operator console (server-rendered pages, `api.console`)
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from api import console, metrics, ops
from api.docs_ui import install_docs
from api.input_guard import install_input_guard
from api.listener import close_listener
from api.mailer import DirectMail, Mailer, QueuedMail
from api.oidc import OidcVerifier
from api.openapi_examples import restore_examples
from api.openapi_ids import operation_id
from api.problems import document_problems, install_problem_handlers
from api.request_context import install_request_context
from api.request_deadline import install_request_deadline
from api.routes import ROUTERS, redirect
from runtime.db import limit_statement_time
from runtime.settings import Settings
from workers.enqueue import install_doorbell

API_PREFIX = "/api/v1"


def create_app(*, mailer: Mailer | None = None) -> FastAPI:
    """Build the API. `mailer` sends mail at once through a transport instead of queueing it
    for a worker (tests pass a recording one)."""
    app = FastAPI(
        lifespan=_lifespan,
        title="Dashin",
        summary="Lead-scraping jobs for B2B lead-generation agencies.",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # /docs and /redoc: `api.docs_ui`, assets shipped in the package
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.mail = DirectMail(mailer) if mailer is not None else QueuedMail()
    app.state.oidc = OidcVerifier()  # identity providers' signing keys, cached per process
    install_doorbell()  # outbox rows (webhook events, mail) are enqueued after commit
    install_problem_handlers(app)
    install_docs(app, f"{API_PREFIX}/openapi.json")
    api = APIRouter(prefix=API_PREFIX)
    for name in ROUTERS:
        module = importlib.import_module(f"api.routes.{name}")
        api.include_router(module.router)
    app.include_router(api)
    # Outside /api/v1: public short links (`/r/{code}`), ops endpoints and Prometheus metrics.
    app.include_router(redirect.router)
    app.include_router(ops.router)
    app.include_router(metrics.router)
    console.install(app)
    metrics.install_metrics(app)
    install_input_guard(app)  # inside the request context: refusals get a request id too
    settings = _settings_or_none()
    # inside the request context: a timed-out request still gets its id and access line
    install_request_deadline(app, settings.request_timeout_s if settings else 0.0)
    install_request_context(app, settings)  # last: the outermost layer (request id, access log)
    limit_statement_time(settings.api_statement_timeout_s if settings else None)
    _finish_openapi(app)
    return app


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Close the shared LISTEN connection (if a stream opened one) when the server stops."""
    _init_sentry()
    yield
    await close_listener()


def _settings_or_none() -> Settings | None:
    from runtime.settings import get_settings

    try:
        return get_settings()
    except Exception:  # settings are validated again, loudly, on the first request
        return None


def _init_sentry() -> None:
    from runtime.sentry import init_sentry
    from runtime.settings import get_settings

    try:
        init_sentry(get_settings(), component="api")
    except Exception:  # settings are validated again, loudly, on the first request
        return


def _finish_openapi(app: FastAPI) -> None:
    """The document FastAPI generates, with its errors documented as problems
    (`api.problems`) and the schemas' examples as the models declare them
    (`api.openapi_examples`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = restore_examples(document_problems(generate()), app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
