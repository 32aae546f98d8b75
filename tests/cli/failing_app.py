"""`dashin api`'s app with one route that fails, for the logging tests (`test_api_logging`).

The route's frame holds a secret and a megabyte in local variables and raises an error with a
50 KB message: the log must show neither the locals nor more than a bounded traceback.
`/broken-stream` answers 200, sends a first chunk and then fails (issue 14, M4: a stream that
breaks must not look complete to the client).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from cli.api_server import server_app

SECRET_LOCAL = "hunter2-local-SECRET"


def create() -> FastAPI:
    app = server_app()

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        password = SECRET_LOCAL  # noqa: F841  (a frame local the log must not show)
        payload = "x" * 1_000_000  # noqa: F841
        raise RuntimeError("boom " + "y" * 50_000)

    @app.get("/broken-stream", include_in_schema=False)
    def broken_stream() -> StreamingResponse:
        def rows() -> Iterator[bytes]:
            yield b"email\nada@example.com\n"
            raise RuntimeError("the export broke")

        return StreamingResponse(rows(), media_type="text/csv")

    return app
