"""`dashin api`: how many uvicorn processes to run, and the metrics directory they share.

One API process is CPU-bound at a few hundred small requests a second (docs/BENCHMARKS.md §6),
so production runs one per core. The default stops at `MAX_DEFAULT_WORKERS` because each
process keeps its own PostgreSQL pool (up to 10 connections): more needs a look at
`max_connections` first, and then an explicit `--workers`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from runtime.settings import Settings

MAX_DEFAULT_WORKERS = 4
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def default_workers() -> int:
    """One process per CPU core this process may use, at most `MAX_DEFAULT_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


@contextmanager
def shared_metrics_dir(workers: int) -> Iterator[str | None]:
    """Several processes: a fresh directory in which prometheus_client merges their request
    latency series (else `/metrics` answers the series of whichever process the scrape hit).
    An operator's own `PROMETHEUS_MULTIPROC_DIR` is kept; ours is removed at exit."""
    if workers <= 1 or os.environ.get(METRICS_DIR_ENV):
        yield os.environ.get(METRICS_DIR_ENV)
        return
    path = tempfile.mkdtemp(prefix="dashin-api-metrics-")
    os.environ[METRICS_DIR_ENV] = path  # inherited by the worker processes uvicorn spawns
    try:
        yield path
    finally:
        os.environ.pop(METRICS_DIR_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def server_app() -> FastAPI:
    """The app as each server process builds it (the factory uvicorn imports by name).

    With several workers, uvicorn starts each process afresh (spawn): nothing the `dashin api`
    parent configured is inherited, so every process applies the logging configuration here,
    before it serves anything (issue 14, H3: they ran on structlog's defaults).
    """
    from api.app import create_app
    from runtime.logging import configure_logging
    from runtime.settings import get_settings

    configure_logging(get_settings())
    return create_app()


#: the factory `serve` runs (tests pass one that adds a failing route)
SERVER_APP = "cli.api_server:server_app"


def serve(host: str, port: int, workers: int, app: str = SERVER_APP) -> None:
    """Run uvicorn without its own logging setup: its lines go through ours (JSON in
    production), and our middleware writes the access lines (`api.request_context`)."""
    import uvicorn

    from runtime.settings import get_settings

    settings = get_settings()
    with shared_metrics_dir(workers):
        uvicorn.run(
            app,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            log_level=settings.log_level,
            access_log=False,
            **proxy_options(settings),
        )


def proxy_options(settings: Settings) -> dict[str, Any]:
    """Whose `X-Forwarded-For` names the client: only `DASHIN_TRUSTED_PROXIES` (issue 14).

    uvicorn's default trusts it from 127.0.0.1 (and `FORWARDED_ALLOW_IPS`), so anyone reaching
    the server through a local hop could name any address, and rotating it escaped the login
    limits. Unset, the header is ignored and the peer's address is the client's."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    allowed = [str(network) for network in settings.trusted_proxies]
    return {"proxy_headers": True, "forwarded_allow_ips": allowed}
