"""`POST /data-sources/{id}/test`: run a connector's `check` with a deadline.

`check` talks to a provider (or sniffs a file) with blocking I/O, so it runs in a worker thread;
the endpoint answers after `CHECK_TIMEOUT_S` even if the provider hangs (the thread is abandoned
and finishes on its own; the HTTP layer's own timeouts bound it). A CSV source is checked against
the upload a job would read (`uploads_repo.upload_for_job`), in the job's params, read through a
`RunContext` as a job reads it (`api.check_context`, `Connector.check_in`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

import anyio
from sqlalchemy.orm import Session

from api import db_threads, source_configs
from api.check_context import CheckContext
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


def _check(target: _Target) -> CheckResult:
    """Build the config and call `check_in`; every failure becomes a CheckResult, never a 500."""
    try:
        config = source_configs.connector_config(target.source)
    except ValidationFailed as exc:
        detail = "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.message
        return CheckResult(ok=False, reason="bad_config", message=detail)
    connector = source_configs.connector_class(target.source.type)()
    source = target.source
    try:
        if target.upload_id is None:
            return connector.check(config)
        params = connector.Params.model_validate({"file_id": str(target.upload_id)})
        ctx = CheckContext(db_threads.engine(), source.domain_id, source.id)
        return connector.check_in(config, params, ctx)
    except ConnectorError as exc:
        return CheckResult(ok=False, reason=cast(CheckReason, exc.reason), message=exc.message)
    except Exception as exc:  # plugin code: a bug in it must not become our 500
        log.warning("source.check_crashed", connector=source.type, exc_info=exc)
        return CheckResult(ok=False, reason="unreachable", message=f"check failed: {exc}")


async def run_check(source_id: uuid.UUID, domain_id: uuid.UUID) -> CheckResult:
    target = await anyio.to_thread.run_sync(_load, source_id, domain_id)
    with anyio.move_on_after(CHECK_TIMEOUT_S):
        return await anyio.to_thread.run_sync(_check, target, abandon_on_cancel=True)
    log.warning("source.check_timeout", data_source_id=str(source_id), timeout_s=CHECK_TIMEOUT_S)
    return CheckResult(
        ok=False, reason="unreachable", message=f"no answer within {CHECK_TIMEOUT_S:.0f}s"
    )
