"""The OpenAPI document is one a generator can use: short unique operation ids (`jobs_start`),
a description for every operation, an example for every request body and every other schema
(each valid for the model behind it); and a Python client generated from it with
`openapi-python-client` builds and imports."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from api.app import create_app
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.openapi_examples import models_behind_schemas

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app()


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_operation_ids_are_short_unique_and_named_by_resource(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    assert all("api_v1" not in i for i in ids)
    by_route = {(m, p): op["operationId"] for m, p, op in _operations(spec)}
    assert by_route["post", "/api/v1/jobs/{job_id}/start"] == "jobs_start"
    assert by_route["post", "/api/v1/jobs"] == "jobs_create"
    assert by_route["get", "/api/v1/leads"] == "leads_list"
    assert by_route["post", "/api/v1/auth/signup"] == "auth_signup"
    assert by_route["patch", "/api/v1/data-sources/{source_id}"] == "data_sources_update"
    assert by_route["post", "/api/v1/campaigns/{campaign_id}/links/bulk"] == "links_bulk_create"


def test_every_operation_has_a_summary_and_a_description(spec: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for method, path, op in _operations(spec)
        if not op.get("summary") or not op.get("description")
    ]
    assert missing == []


def test_every_request_body_schema_has_an_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    missing = []
    for method, path, op in _operations(spec):
        for content in op.get("requestBody", {}).get("content", {}).values():
            schema = content["schema"]
            if "$ref" in schema:
                name = schema["$ref"].rsplit("/", 1)[-1]
                schema = schemas[name]
            else:
                name = f"{method.upper()} {path} (inline)"
            if "multipart/form-data" not in op["requestBody"]["content"] and not (
                schema.get("examples") or schema.get("example")
            ):
                missing.append(name)
    assert missing == []


def _multipart_schemas(spec: dict[str, Any]) -> set[str]:
    """Schemas of multipart bodies (FastAPI's `Body_<operation>` for a file upload): their one
    field is the file, which no JSON example can be, so they are exempt as above."""
    return {
        content["schema"]["$ref"].rsplit("/", 1)[-1]
        for _, _, op in _operations(spec)
        for media_type, content in op.get("requestBody", {}).get("content", {}).items()
        if media_type == "multipart/form-data" and "$ref" in content["schema"]
    }


def test_every_object_schema_has_an_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    exempt = _multipart_schemas(spec)
    missing = [
        name
        for name, schema in schemas.items()
        if schema.get("type") == "object"
        and not (schema.get("examples") or schema.get("example"))
        and name not in exempt
    ]
    assert missing == []
    assert exempt == {"Body_suppressions_import"}


def test_every_schema_example_is_valid_for_its_model(app: FastAPI, spec: dict[str, Any]) -> None:
    # Given the model behind every schema of the document
    schemas = spec["components"]["schemas"]
    models = models_behind_schemas(app)
    assert sorted(models) == sorted(schemas)
    # When each example is read by its model as JSON off the wire: strictly (`"5"` is no int)
    # and refusing unknown fields (a misspelt one would otherwise pass unnoticed)
    invalid = []
    for name, schema in schemas.items():
        examples = schema.get("examples", []) + ([schema["example"]] if "example" in schema else [])
        for number, example in enumerate(examples):
            try:
                models[name].model_validate_json(json.dumps(example), strict=True, extra="forbid")
            except ValidationError as exc:
                invalid.append(f"{name} example {number}: {exc}")
    # Then none is refused
    assert invalid == []


def test_examples_keep_their_nulls_and_their_order(spec: dict[str, Any]) -> None:
    """FastAPI drops every null from the document and pydantic sorts the examples' keys;
    `api.openapi_examples` puts each model's own examples back."""
    example = spec["components"]["schemas"]["JobCreate"]["examples"][0]
    assert example["campaign_id"] is None
    assert list(example) == ["data_source_id", "campaign_id", "params", "start"]
    # a required nullable field of a response is in its example, as null
    job = spec["components"]["schemas"]["JobOut"]["examples"][0]
    assert "error" in job and job["error"] is None


def test_a_page_example_is_its_item_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    page = schemas["Page_LeadOut_"]["examples"][0]
    assert page["items"] == schemas["LeadOut"]["examples"]
    assert page["next_cursor"]  # there is a next page: a cursor past the item


def test_idempotent_posts_document_the_header(spec: dict[str, Any]) -> None:
    def headers(method: str, path: str) -> list[str]:
        op = spec["paths"][path][method]
        return [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]

    assert IDEMPOTENCY_HEADER in headers("post", "/api/v1/jobs")
    assert IDEMPOTENCY_HEADER in headers("post", "/api/v1/jobs/{job_id}/cancel")
    assert IDEMPOTENCY_HEADER in headers("post", "/api/v1/data-sources/{source_id}/files")
    assert IDEMPOTENCY_HEADER not in headers("get", "/api/v1/jobs")
    assert IDEMPOTENCY_HEADER not in headers("post", "/api/v1/auth/login")


@pytest.mark.slow
def test_a_generated_python_client_builds_and_imports(
    spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator is not None, "openapi-python-client (a dev dependency) is not installed"
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(spec))
    out = tmp_path / "dashin_client"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"project_name_override": "dashin-client"}))
    done = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(out),
            "--config",
            str(config),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    # The generated package imports, and its methods carry the operation ids.
    monkeypatch.syspath_prepend(str(tmp_path))
    start = importlib.import_module("dashin_client.api.jobs.jobs_start")
    listing = importlib.import_module("dashin_client.api.leads.leads_list")
    client_module = importlib.import_module("dashin_client")
    assert callable(start.sync_detailed) and callable(listing.sync)
    client = client_module.AuthenticatedClient(base_url="http://127.0.0.1:9", token="dsk_x")
    assert client.token == "dsk_x"
    compiled = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(out)], capture_output=True, text=True
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
