"""`POST /data-sources/{id}/test`: run a connector's `check` with a deadline.

`check` talks to a provider (or sniffs a file) with blocking I/O, so it runs in a worker thread;
the endpoint answers after `CHECK_TIMEOUT_S` even if the provider hangs (the thread is abandoned
and finishes on its own; the HTTP layer's own timeouts bound it). A CSV source is checked against
the upload a job would read (`uploads_repo.upload_for_job`), copied to a temporary file because
`check` reads a path, not the database.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import cast

import anyio
from sqlalchemy.orm import Session

from api import db_threads, source_configs
from connectors.base import CheckReason, CheckResult
from connectors.errors import ConnectorError
from models import sources_repo, uploads_repo
from models.sources import DataSource
from runtime.errors import ValidationFailed
from runtime.logging import get_logger

log = get_logger(__name__)

CHECK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class _Target:
    source: DataSource
    upload_id: uuid.UUID | None


def _load(source_id: uuid.UUID, domain_id: uuid.UUID) -> _Target:
    def read(session: Session) -> _Target:
        source = sources_repo.get_source(session, source_id, domain_id)
        upload = None
        if source.type == "csv":
            wanted = uploads_repo.upload_for_job(
                session, domain_id=domain_id, data_source_id=source_id, config=source.config
            )
            found = (
                uploads_repo.get_upload(session, uuid.UUID(wanted), source_id) if wanted else None
            )
            upload = found.id if found else None
        session.expunge(source)
        return _Target(source, upload)

    return db_threads.in_session(read)


def _copy_upload(upload_id: uuid.UUID) -> str:
    """Write the upload to a temporary file, one chunk at a time."""
    fd, path = tempfile.mkstemp(prefix="dashin-check-", suffix=".csv")

    def copy(session: Session) -> None:
        with os.fdopen(fd, "wb") as out:
            for chunk in uploads_repo.iter_chunks(session, upload_id):
                out.write(chunk)

    db_threads.in_session(copy)
    return path


def _check(target: _Target) -> CheckResult:
    """Build the config and call `check`; every failure becomes a CheckResult, never a 500."""
    path = _copy_upload(target.upload_id) if target.upload_id else None
    try:
        overrides = {"path": path} if path else None
        context = {"allow_server_paths": True} if path else None
        try:
            config = source_configs.connector_config(target.source, overrides, context=context)
        except ValidationFailed as exc:
            detail = "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.message
            return CheckResult(ok=False, reason="bad_config", message=detail)
        connector = source_configs.connector_class(target.source.type)()
        try:
            return connector.check(config)
        except ConnectorError as exc:
            return CheckResult(ok=False, reason=cast(CheckReason, exc.reason), message=exc.message)
        except Exception as exc:  # plugin code: a bug in it must not become our 500
            log.warning("source.check_crashed", connector=target.source.type, exc_info=exc)
            return CheckResult(ok=False, reason="unreachable", message=f"check failed: {exc}")
    finally:
        if path:
            os.unlink(path)


async def run_check(source_id: uuid.UUID, domain_id: uuid.UUID) -> CheckResult:
    target = await anyio.to_thread.run_sync(_load, source_id, domain_id)
    with anyio.move_on_after(CHECK_TIMEOUT_S):
        return await anyio.to_thread.run_sync(_check, target, abandon_on_cancel=True)
    log.warning("source.check_timeout", data_source_id=str(source_id), timeout_s=CHECK_TIMEOUT_S)
    return CheckResult(
        ok=False, reason="unreachable", message=f"no answer within {CHECK_TIMEOUT_S:.0f}s"
    )
