"""Ops endpoints at the root, outside `/api/v1`: liveness and readiness for load balancers.

`/healthz` answers while the process serves requests; `/readyz` also checks that PostgreSQL and
Redis (rate limits, locks, the default broker) answer, so a replica that lost them drops out of
rotation instead of failing every request.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import redis_client
from api.problems import problem_response
from runtime.db import get_engine
from runtime.settings import get_settings

router = APIRouter(tags=["ops"])
log = structlog.get_logger("api.ops")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers (no dependency is checked)."""
    return {"status": "ok"}


def _check_database() -> None:
    with get_engine(get_settings().require_database_url()).connect() as conn:
        conn.execute(text("SELECT 1"))


def _check_redis() -> None:
    redis_client(get_settings().require_redis_url()).ping()


@router.get("/readyz", response_model=None)
def readyz() -> Any:
    """Readiness: PostgreSQL and Redis answer; otherwise 503 naming the unreachable ones."""
    failed = []
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            log.warning("readyz.check_failed", check=name, error_type=type(exc).__name__)
            failed.append(name)
    if failed:
        response: JSONResponse = problem_response(
            503, "Not ready", f"unreachable: {', '.join(failed)}", code="not_ready"
        )
        return response
    return {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
