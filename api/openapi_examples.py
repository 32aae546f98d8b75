"""Every schema's examples in the OpenAPI document exactly as its model declares them.

FastAPI encodes the document with `exclude_none=True`, which drops every null inside it, examples
included: `{"campaign_id": null, ...}` would lose a field that is required (and nullable) and no
longer be valid for its own schema; pydantic also sorts their keys, so a job's example would start
at `attempts`. `restore_examples` puts back each model's own (`api.schemas.common.example`),
finding the models as FastAPI finds them (`models_behind_schemas`); `tests/api/test_openapi.py`
checks with the same map that every schema has examples and that each is valid for its model.
"""

from __future__ import annotations

import copy
import re
import typing
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_fields_from_routes
from pydantic import BaseModel

from api.problems import Problem


def schema_name(model: type[BaseModel]) -> str:
    """The component name pydantic gives `model`'s schema: `Page[JobOut]` is `Page_JobOut_`."""
    return re.sub(r"[^a-zA-Z0-9.\-_]", "_", model.__name__).replace(".", "__")


def models_behind_schemas(app: FastAPI) -> dict[str, type[BaseModel]]:
    """Component schema name → the model it documents: the models of every route's body,
    response and parameter fields, those nested in them, and `Problem` (which
    `api.problems.document_problems` adds)."""
    found: dict[type[BaseModel], None] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found[annotation] = None
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for argument in typing.get_args(annotation):
            visit(argument)

    for field in get_fields_from_routes(app.routes):
        visit(field.field_info.annotation)
    visit(Problem)
    return {schema_name(model): model for model in found}


def declared_examples(model: type[BaseModel]) -> list[Any] | None:
    """The examples `model`'s config declares (a dict, or a callable such as `Page`'s)."""
    extra = model.model_config.get("json_schema_extra")
    if callable(extra):
        written: dict[str, Any] = {}
        extra(written, model)  # type: ignore[call-arg]  # ours take (schema, model)
        extra = written
    examples = extra.get("examples") if extra is not None else None
    return examples if isinstance(examples, list) else None


def restore_examples(openapi: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """`openapi` with each component schema's `examples` as its model declares them."""
    schemas = openapi.get("components", {}).get("schemas", {})
    for name, model in models_behind_schemas(app).items():
        examples = declared_examples(model)
        if name in schemas and examples:
            schemas[name]["examples"] = copy.deepcopy(examples)  # the models' stay as they are
    return openapi
