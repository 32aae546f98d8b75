"""`dashin api`'s app with one route that fails, for the logging tests (`test_api_logging`).

The route's frame holds a secret and a megabyte in local variables and raises an error with a
50 KB message: the log must show neither the locals nor more than a bounded traceback.
"""

from __future__ import annotations

from fastapi import FastAPI

from cli.api_server import server_app

SECRET_LOCAL = "hunter2-local-SECRET"


def create() -> FastAPI:
    app = server_app()

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        password = SECRET_LOCAL  # noqa: F841  (a frame local the log must not show)
        payload = "x" * 1_000_000  # noqa: F841
        raise RuntimeError("boom " + "y" * 50_000)

    return app
