"""Checking what a job (or a schedule) will run with, before any row is written.

Shared by `POST /jobs`, `POST /schedules` and run-now: the data source and campaign must be the
caller's domain's, and `params` must satisfy the connector's `Params` (422 naming `params.<field>`);
a `file_id` must name a file of that very data source, so a job can never read another tenant's
upload.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from api import source_configs
from api.schemas.data_sources import validate_model
from models import jobs_query, sources_repo, uploads_repo
from models.sources import DataSource
from runtime.errors import Conflict, FieldError, NotFound, ValidationFailed


def _invalid(field: str, code: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [FieldError(field, code, message)])


def resolve_source(session: Session, source_id: uuid.UUID, domain_id: uuid.UUID) -> DataSource:
    try:
        return sources_repo.get_source(session, source_id, domain_id)
    except NotFound:
        raise _invalid("data_source_id", "not_found", "no such data source") from None


def require_live_source(session: Session, source_id: uuid.UUID, domain_id: uuid.UUID) -> None:
    """A job on a deleted data source is not started or resumed (restore the source first)."""
    try:
        sources_repo.get_source(session, source_id, domain_id)
    except NotFound:
        raise Conflict(f"data source {source_id} is deleted: restore it first") from None


def check_campaign(session: Session, campaign_id: uuid.UUID | None, domain_id: uuid.UUID) -> None:
    if campaign_id is not None and not jobs_query.campaign_in_domain(
        session, campaign_id, domain_id
    ):
        raise _invalid("campaign_id", "not_found", "no such campaign")


def validate_params(session: Session, source: DataSource, params: dict[str, Any]) -> dict[str, Any]:
    """The params as the connector reads them (normalised JSON, only the keys given)."""
    cls = source_configs.connector_class(source.type, field="data_source_id")
    model: BaseModel = validate_model(cls.Params, params, "params")
    file_id = getattr(model, "file_id", None)
    if file_id is not None:
        try:
            upload_id: uuid.UUID | None = uuid.UUID(str(file_id))
        except ValueError:
            upload_id = None
        if upload_id is None or uploads_repo.get_upload(session, upload_id, source.id) is None:
            raise _invalid("params.file_id", "not_found", "no uploaded file of this data source")
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True)
    return dumped
