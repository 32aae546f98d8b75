"""`/data-sources`: a connector plus its config and encrypted credentials, its files and jobs.

Managers create, edit and delete sources; members use them (test, upload files, run jobs);
viewers read. Secrets are write-only: responses name them in `secrets_set`, never show them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api import domain_proof, source_checks, source_configs, uploads
from api.audit import AuditedIdempotentRoute
from api.db_threads import sessions
from api.deps import ManagerDep, ReaderDep, SessionDep, SettingsDep, WriterDep
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_response, problem_responses
from api.schemas.data_sources import (
    CheckOut,
    DataSourceCreate,
    DataSourceOut,
    DataSourceUpdate,
    UploadOut,
)
from api.schemas.jobs import JobOut
from models import jobs_query, sources_repo, tenancy_repo, uploads_repo
from models.jobs import Job
from models.sources import DataSource
from runtime.errors import FieldError, PermissionDenied, ValidationFailed

T = TypeVar("T")

router = APIRouter(
    prefix="/data-sources", tags=["data sources"], route_class=AuditedIdempotentRoute
)

SORTABLE = {"created_at": DataSource.created_at, "name": DataSource.name}
JOB_SORTABLE = {"created_at": Job.created_at}


def _out(source: DataSource) -> DataSourceOut:
    return DataSourceOut.build(source, source_configs.secrets_set(source))


def _require_own_upload(session: Session, source_id: uuid.UUID | None, file_id: object) -> None:
    """A config's `file_id` must name a file of this very source (never another tenant's).

    A source being created has no files yet (`source_id=None`), so any `file_id` is refused.
    """
    try:
        upload_id = uuid.UUID(str(file_id))
    except ValueError:
        upload_id = None
    if (
        upload_id is None
        or source_id is None
        or uploads_repo.get_upload(session, upload_id, source_id) is None
    ):
        raise ValidationFailed(
            "unknown file",
            [FieldError("config.file_id", "not_found", "no uploaded file of this data source")],
        )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 422),
)
def create_data_source(
    body: DataSourceCreate, session: SessionDep, principal: ManagerDep, settings: SettingsDep
) -> DataSourceOut:
    """Create a data source of a connector type; `config` is validated by the connector's schema and
    its secrets are stored encrypted, never shown again. Paid providers need a verified domain."""
    if settings.require_domain_proof and body.type in domain_proof.PAID_TYPES:
        domain = tenancy_repo.get_domain(session, principal.domain_id)
        if domain.verified_at is None:
            raise PermissionDenied(
                f"{body.type} is a paid provider: prove you own {domain.domain_name} first "
                "(GET /api/v1/domains/{id}/verification)"
            )
    stored = source_configs.for_create(body.type, body.config)
    if stored.public.get("file_id") is not None:
        _require_own_upload(session, None, stored.public["file_id"])
    source = sources_repo.create_source(
        session,
        domain_id=principal.domain_id,
        type_=body.type,
        name=body.name,
        config=stored.public,
        credentials=stored.credentials,
        created_by=principal.user_id,
    )
    return DataSourceOut.build(source, sorted(stored.secrets))


@router.get("", responses=problem_responses(404, 422))
def list_data_sources(
    session: SessionDep,
    principal: ReaderDep,
    page: PageParamsDep,
    type: Annotated[str | None, Query(description="Only sources of this connector type")] = None,
    include_deleted: Annotated[bool, Query(description="Also deleted sources (managers)")] = False,
) -> Page[DataSourceOut]:
    """The domain's data sources with their metrics (secrets omitted)."""
    if include_deleted and not principal.has_role("manager"):
        raise PermissionDenied("listing deleted data sources requires the role manager")
    rows = paginate(
        session,
        sources_repo.list_sources_query(
            principal.domain_id, type_=type, include_deleted=include_deleted
        ),
        page,
        sortable=SORTABLE,
        id_column=DataSource.id,
    )
    return rows.to_page([_out(s) for s in rows.rows])


@router.get("/{source_id}", responses=problem_responses(404))
def get_data_source(
    source_id: uuid.UUID, session: SessionDep, principal: ReaderDep
) -> DataSourceOut:
    """One data source: config without secrets, `secrets_set`, sync state and metrics."""
    return _out(sources_repo.get_source(session, source_id, principal.domain_id))


@router.patch("/{source_id}", responses=problem_responses(403, 404, 422))
def update_data_source(
    source_id: uuid.UUID, body: DataSourceUpdate, session: SessionDep, principal: ManagerDep
) -> DataSourceOut:
    """Rename a source or merge `config`: given keys replace, `null` removes (and clears a secret),
    absent keys and secrets are kept."""
    source = sources_repo.get_source(session, source_id, principal.domain_id)
    stored = None
    if body.config is not None:
        stored = source_configs.for_patch(source, body.config)
        if stored.public.get("file_id") is not None:
            _require_own_upload(session, source_id, stored.public["file_id"])
    source = sources_repo.update_source(
        session,
        source,
        name=body.name,
        config=stored.public if stored else None,
        credentials=stored.credentials if stored else None,
        clear_credentials=stored is not None and not stored.secrets,
    )
    return DataSourceOut.build(
        source, sorted(stored.secrets) if stored else source_configs.secrets_set(source)
    )


@router.delete(
    "/{source_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
)
def delete_data_source(
    source_id: uuid.UUID, session: SessionDep, principal: ManagerDep
) -> Response:
    """Delete a data source (managers only; `POST .../restore` undoes it). It starts no more jobs
    and its schedules stop firing; its pending and paused jobs are cancelled, and while a job is
    queued or running on it the answer is 409 (cancel that job first)."""
    sources_repo.delete_source(session, source_id, principal.domain_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{source_id}/restore", responses=problem_responses(403, 404))
def restore_data_source(
    source_id: uuid.UUID, session: SessionDep, principal: ManagerDep
) -> DataSourceOut:
    """Bring a deleted data source back (its schedules fire again; cancelled jobs stay so)."""
    return _out(sources_repo.restore_source(session, source_id, principal.domain_id))


@router.post("/{source_id}/test", responses=problem_responses(403, 404))
async def test_data_source(source_id: uuid.UUID, principal: WriterDep) -> CheckOut:
    """Try the source's credentials and config; answers ok/reason/message and up to 5 leads."""
    result = await source_checks.run_check(source_id, principal.domain_id)
    return CheckOut.build(result)


@router.post(
    "/{source_id}/files",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    responses=problem_responses(403, 404, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_file(
    source_id: uuid.UUID, request: Request, principal: WriterDep, settings: SettingsDep
) -> UploadOut | JSONResponse:
    """Store multipart field `file` in PostgreSQL, streamed in 1 MiB chunks (no disk, no RAM)."""
    limit = settings.upload_max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + uploads.ENVELOPE_SLACK:
        return _too_large(limit)
    session = sessions()()
    try:
        await _run(lambda: sources_repo.get_source(session, source_id, principal.domain_id))
        upload = await uploads.store_upload(
            request.stream(),
            content_type=request.headers.get("content-type"),
            session=session,
            domain_id=principal.domain_id,
            data_source_id=source_id,
            created_by=principal.user_id,
            max_bytes=limit,
        )
    except uploads.PayloadTooLarge:
        return _too_large(limit)
    finally:
        await _run(session.close)
    return UploadOut.build(upload)


@router.get("/{source_id}/jobs", responses=problem_responses(404, 422))
def list_source_jobs(
    source_id: uuid.UUID, session: SessionDep, principal: ReaderDep, page: PageParamsDep
) -> Page[JobOut]:
    """The jobs of one data source, newest first."""
    sources_repo.get_source(session, source_id, principal.domain_id)
    rows = paginate(
        session,
        jobs_query.list_query(principal.domain_id, data_source_id=source_id),
        page,
        sortable=JOB_SORTABLE,
        id_column=Job.id,
    )
    return rows.to_page([JobOut.build(j) for j in rows.rows])


def _too_large(limit: int) -> JSONResponse:
    return problem_response(
        413,
        "Payload too large",
        f"the file is larger than the limit of {limit} bytes",
        code="payload_too_large",
        extra={"limit_bytes": limit},
    )


async def _run(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)
