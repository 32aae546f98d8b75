"""Wire shapes of data sources, uploads and connectors (ARCHITECTURE §9), and config validation.

A source's config is validated by its connector's own `Config` model, so the API knows no
provider's fields; validation errors are re-labelled `config.<field>` (or `params.<field>` for job
params) so a client can point at the exact input. Secrets never appear in an output model: only
their names, in `secrets_set`.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError, create_model

from api.schemas.common import JsonObject, RowOut, example, from_row
from api.schemas.jobs import JobWarning
from connectors.base import CheckResult
from connectors.errors import ConnectorError
from models.sources import DataSource
from records import LEAD_FIELDS, LeadRecord
from runtime.errors import FieldError, ValidationFailed

M = TypeVar("M", bound=BaseModel)


def validate_model(
    model: type[M], data: dict[str, Any], prefix: str, *, context: dict[str, Any] | None = None
) -> M:
    """Validate `data` with `model`; failures become a 422 naming `prefix.<field path>`.

    A connector validator may raise its own `ConfigError` (e.g. server paths are disabled); that
    is the client's input too, so it becomes a 422 on `prefix` rather than a server error.
    """
    try:
        return model.model_validate(data, context=context)
    except ConnectorError as exc:
        raise ValidationFailed(
            f"invalid {prefix}", [FieldError(prefix, exc.code, exc.message)]
        ) from None
    except ValidationError as exc:
        errors = [
            FieldError(
                field=".".join([prefix, *(str(p) for p in err["loc"])]),
                code=err["type"],
                message=err["msg"],
            )
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise ValidationFailed(f"invalid {prefix}", errors) from None


class DataSourceCreate(BaseModel):
    model_config = example(
        {
            "type": "apollo",
            "name": "Apollo EU",
            "config": {"api_key": "apollo-key-from-your-account"},
        }
    )
    type: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    #: the connector's Config; secret fields are stored encrypted and never shown again
    config: JsonObject = Field(default_factory=dict)


class DataSourceUpdate(BaseModel):
    model_config = example({"name": "Apollo EU (2027)", "config": {"api_key": "a-rotated-key"}})
    name: str | None = Field(None, min_length=1, max_length=200)
    #: merged into the stored config: given keys replace, `null` removes (and clears a secret),
    #: absent keys (and secrets) are kept
    config: JsonObject | None = None


class SourceMetrics(BaseModel):
    jobs_total: int
    jobs_failed: int
    leads_total: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    #: the last finished job's warnings (`[{"code", "count", "message"}]`, as on the job)
    last_warnings: list[JobWarning]


class DataSourceOut(BaseModel):
    id: uuid.UUID
    domain_id: uuid.UUID
    type: str
    name: str
    config: dict[str, Any]
    secrets_set: list[str]
    sync_state: dict[str, Any]
    metrics: SourceMetrics
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    #: set when deleted (listed only with `?include_deleted=true`); `POST .../restore` clears it
    deleted_at: datetime | None = None

    @classmethod
    def build(cls, source: DataSource, secrets_set: list[str]) -> DataSourceOut:
        metrics = from_row(
            SourceMetrics, source, last_warnings=[JobWarning(**w) for w in source.last_warnings]
        )
        return from_row(cls, source, secrets_set=sorted(secrets_set), metrics=metrics)


class _SampleLeadBase(BaseModel):
    @classmethod
    def from_record(cls, record: LeadRecord) -> _SampleLeadBase:
        fields = asdict(record)
        fields.pop("raw", None)  # provider payloads can be large and are not needed to judge
        return cls(**fields)


if TYPE_CHECKING:
    SampleLead = _SampleLeadBase
else:
    #: a checked record as shown: every lead field plus `external_id`, derived from `LeadRecord`
    SampleLead = create_model(
        "SampleLead",
        __base__=_SampleLeadBase,
        **{name: (str | None, None) for name in (*LEAD_FIELDS, "external_id")},
    )


class CheckOut(BaseModel):
    ok: bool
    reason: str | None
    message: str
    sample: list[SampleLead]

    @classmethod
    def build(cls, result: CheckResult) -> CheckOut:
        return from_row(cls, result, sample=[SampleLead.from_record(r) for r in result.sample[:5]])


class UploadOut(RowOut):
    id: uuid.UUID
    filename: str
    size: int
    sha256: str | None
    content_type: str | None
    created_at: datetime


class ConnectorOut(BaseModel):
    type: str
    config_schema: dict[str, Any]
    params_schema: dict[str, Any]


class ConnectorList(BaseModel):
    items: list[ConnectorOut]
