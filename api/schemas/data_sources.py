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

from api.schemas import examples as ex
from api.schemas.common import JsonObject, RowOut, example, example_of, from_row
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


_METRICS_EXAMPLE = {
    "jobs_total": 12,
    "jobs_failed": 1,
    "leads_total": 4310,
    "last_run_at": ex.JOB_STARTED_AT,
    "last_success_at": ex.JOB_FINISHED_AT,
    "last_error": None,
    "last_warnings": [example_of(JobWarning)],
}
_LEAD_EXAMPLE = {
    "first_name": "Grace",
    "last_name": "Hopper",
    "email": "grace@navy.example",
    "title": "CFO",
    "company_name": "Navy Labs",
    "company_domain": "navy.example",
    "company_industry": "Research",
    "company_size": "51-200",
    "linkedin_url": "https://www.linkedin.com/in/grace-hopper-example",
    "phone": None,
    "city": "Arlington",
    "state": "Virginia",
    "country": "United States",
    "external_id": "5e1f0c2a",
}


class SourceMetrics(BaseModel):
    model_config = example(_METRICS_EXAMPLE)

    jobs_total: int
    jobs_failed: int
    leads_total: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    #: the last finished job's warnings (`[{"code", "count", "message"}]`, as on the job)
    last_warnings: list[JobWarning]


class DataSourceOut(BaseModel):
    model_config = example(
        {
            "id": ex.SOURCE_ID,
            "domain_id": ex.DOMAIN_ID,
            "type": "apollo",
            "name": "Apollo EU",
            # secrets are never shown: `api_key` is only named in `secrets_set`
            "config": {},
            "secrets_set": ["api_key"],
            "sync_state": {},
            "metrics": _METRICS_EXAMPLE,
            "created_by": ex.USER_ID,
            "created_at": ex.CREATED_AT,
            "updated_at": ex.UPDATED_AT,
            "deleted_at": None,
        }
    )

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
        __config__=example(_LEAD_EXAMPLE),
        **{name: (str | None, None) for name in (*LEAD_FIELDS, "external_id")},
    )


class CheckOut(BaseModel):
    model_config = example(
        {
            "ok": True,
            "reason": None,
            "message": "1840 people match",
            "sample": [_LEAD_EXAMPLE],
        },
        {
            "ok": False,
            "reason": "bad_credentials",
            "message": "Apollo refused the API key: check it in the source's config",
            "sample": [],
        },
    )

    ok: bool
    reason: str | None
    message: str
    sample: list[SampleLead]

    @classmethod
    def build(cls, result: CheckResult) -> CheckOut:
        return from_row(cls, result, sample=[SampleLead.from_record(r) for r in result.sample[:5]])


class UploadOut(RowOut):
    model_config = example(
        {
            "id": ex.UPLOAD_ID,
            "filename": "trade-show-leads.csv",
            "size": 48213,
            "sha256": "9f2b5c0e8d7a6b4c3e1f0a9d8c7b6a5e4d3c2b1a0f9e8d7c6b5a4e3d2c1b0a9f",
            "content_type": "text/csv",
            "created_at": ex.CREATED_AT,
        }
    )

    id: uuid.UUID
    filename: str
    size: int
    sha256: str | None
    content_type: str | None
    created_at: datetime


_NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
#: the `csv` connector's own schemas, as `GET /connectors` answers them
_CONNECTOR_EXAMPLE = {
    "type": "csv",
    "config_schema": {
        "additionalProperties": False,
        "properties": {
            "file_id": {**_NULLABLE_STRING, "title": "File Id"},
            "path": {**_NULLABLE_STRING, "title": "Path"},
            "column_map": {
                "additionalProperties": {
                    "anyOf": [{"enum": list(LEAD_FIELDS), "type": "string"}, {"type": "null"}]
                },
                "title": "Column Map",
                "type": "object",
            },
            "delimiter": {
                "anyOf": [{"maxLength": 1, "minLength": 1, "type": "string"}, {"type": "null"}],
                "default": None,
                "title": "Delimiter",
            },
            "encoding": {**_NULLABLE_STRING, "title": "Encoding"},
            "page_size": {
                "default": 5000,
                "maximum": 100000,
                "minimum": 1,
                "title": "Page Size",
                "type": "integer",
            },
        },
        "title": "CsvConfig",
        "type": "object",
    },
    "params_schema": {
        "additionalProperties": False,
        "properties": {
            "file_id": {**_NULLABLE_STRING, "title": "File Id"},
            "page_size": {
                "anyOf": [{"maximum": 100000, "minimum": 1, "type": "integer"}, {"type": "null"}],
                "default": None,
                "title": "Page Size",
            },
        },
        "title": "CsvParams",
        "type": "object",
    },
}


class ConnectorOut(BaseModel):
    model_config = example(_CONNECTOR_EXAMPLE)

    type: str
    config_schema: dict[str, Any]
    params_schema: dict[str, Any]


class ConnectorList(BaseModel):
    model_config = example({"items": [_CONNECTOR_EXAMPLE]})

    items: list[ConnectorOut]
