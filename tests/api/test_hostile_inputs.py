"""A hand-kept corpus of hostile payloads (issue 14, M4): every one gets a 4xx problem, never a 500.

Each entry reproduces a cause the black-box probe found: NUL bytes in text and JSON, NaN,
Infinity and lone surrogates in free-form JSON, JSON nested 500 deep, a 1 MB tag, a codec that is
not a text encoding named as a CSV encoding, integers past their column types, tampered cursors,
malformed multipart.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    connectors_registry,  # noqa: F401  (fixture)
    create_source,
)

pytestmark = pytest.mark.usefixtures("connectors_registry")

NESTED = "[" * 500 + "]" * 500
LONE_SURROGATE = '{"name": "x", "description": "\\ud800"}'


def _raw(body: str) -> dict[str, Any]:
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


def _multipart(filename: bytes, content_type: bytes = b"text/csv") -> dict[str, Any]:
    """A one-file multipart body built by hand: httpx cannot encode a non-UTF-8 file name."""
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: " + content_type + b"\r\n\r\nemail\na@b.co\n\r\n--XyZ--\r\n"
    )
    return {"content": body, "headers": {"Content-Type": "multipart/form-data; boundary=XyZ"}}


#: (id, method, path, request kwargs); `{source}` is a CSV data source of the caller's domain
CORPUS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("redirect-nul", "GET", "/r/%00", {}),
    ("leads-q-nul", "GET", "/api/v1/leads?q=%00", {}),
    ("leads-tag-nul", "GET", "/api/v1/leads?tag=a%00b", {}),
    ("campaign-name-nul", "POST", "/api/v1/campaigns", {"json": {"name": "a\u0000b"}}),
    ("lead-tag-nul", "POST", "/api/v1/leads", {"json": {"email": "a@b.co", "tags": ["x\u0000"]}}),
    ("lead-tag-1mb", "POST", "/api/v1/leads", {"json": {"email": "a@b.co", "tags": ["x" * 2**20]}}),
    ("job-params-nan", "POST", "/api/v1/jobs",
     _raw('{"data_source_id": "{source}", "params": {"limit": NaN}}')),
    ("job-params-infinity", "POST", "/api/v1/jobs",
     _raw('{"data_source_id": "{source}", "params": {"x": Infinity}}')),
    ("job-params-nul", "POST", "/api/v1/jobs",
     {"json": {"data_source_id": "{source}", "params": {"x": "a\u0000"}}}),
    ("campaign-lone-surrogate", "POST", "/api/v1/campaigns", _raw(LONE_SURROGATE)),
    ("job-params-nested", "POST", "/api/v1/jobs",
     _raw('{"data_source_id": "{source}", "params": {"x": ' + NESTED + "}}")),
    ("body-nested", "POST", "/api/v1/campaigns", _raw(NESTED)),
    ("schedule-interval-int4", "POST", "/api/v1/schedules",
     {"json": {"data_source_id": "{source}", "interval_seconds": 2**31}}),
    ("logs-after-seq-int8", "GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000/logs"
     f"?after_seq={2**63}", {}),
    ("cursor-tampered", "GET", "/api/v1/campaigns?cursor=eyJzIjoiLWNyZWF0ZWRfYXQiLCJ2IjpbXX0", {}),
    ("cursor-garbage", "GET", "/api/v1/campaigns?cursor=%00%01", {}),
    ("csv-codec-not-text", "PATCH", "/api/v1/data-sources/{source}",
     {"json": {"config": {"encoding": "base64_codec"}}}),
    ("csv-codec-rot13", "PATCH", "/api/v1/data-sources/{source}",
     {"json": {"config": {"encoding": "zlib"}}}),
    ("multipart-no-boundary", "POST", "/api/v1/data-sources/{source}/files",
     {"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}}),
    ("multipart-bad-filename", "POST", "/api/v1/data-sources/{source}/files",
     _multipart(b"\xff\xfe.csv")),
    ("multipart-nul-filename", "POST", "/api/v1/data-sources/{source}/files",
     _multipart(b"a\x00.csv")),
    ("multipart-huge-filename", "POST", "/api/v1/data-sources/{source}/files",
     {"files": {"file": ("a" * 100_000 + ".csv", b"email\na@b.co\n", "text/csv")}}),
]  # fmt: skip


def _fill(value: Any, source: str) -> Any:
    if isinstance(value, str):
        return value.replace("{source}", source)
    if isinstance(value, bytes):
        return value.replace(b"{source}", source.encode())
    if isinstance(value, dict):
        return {k: _fill(v, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, source) for v in value]
    return value


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user()


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_hostile_input_gets_a_problem_not_a_server_error(
    api_client: TestClient, manager: ApiUser, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    source = create_source(api_client, manager, type_="csv", name="Uploads", config={})["id"]
    request = _fill(kwargs, source)
    headers = {**manager.headers, **request.pop("headers", {})}
    response = api_client.request(method, _fill(path, source), headers=headers, **request)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field", "code"),
    [
        ("GET", "/api/v1/leads?q=%00", {}, "q", "nul_character"),
        ("GET", f"/api/v1/leads?page_size={2**64}", {}, "page_size", "integer_out_of_range"),
        ("POST", "/api/v1/campaigns", {"json": {"name": "ok", "meta": {"a": ["x\u0000"]}}},
         "meta.a.0", "nul_character"),
        ("POST", "/api/v1/campaigns", _raw('{"name": 1e400}'), "name", "non_finite_number"),
        ("POST", "/api/v1/campaigns", _raw(NESTED), "body", "too_deep"),
        ("POST", "/api/v1/campaigns", _raw('{"name": "x", "meta": ' + NESTED + "}"), "meta",
         "too_deep"),
    ],
)  # fmt: skip
def test_refusals_name_the_field(
    api_client: TestClient,
    manager: ApiUser,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    field: str,
    code: str,
) -> None:
    headers = {**manager.headers, **kwargs.pop("headers", {})}
    response = api_client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["code"] == code
    assert response.json()["errors"][0]["field"].startswith(field)


@pytest.mark.parametrize(
    "kwargs",
    [_multipart(b"\xff\xfe.csv"), _multipart(b"a.csv", content_type=b"text/\xe9\xff")],
    ids=["file-name", "content-type"],
)
def test_an_upload_header_that_is_not_utf8_is_refused_by_field(
    api_client: TestClient, manager: ApiUser, kwargs: dict[str, Any]
) -> None:
    source = create_source(api_client, manager, type_="csv", name="Uploads", config={})["id"]
    response = api_client.post(
        f"/api/v1/data-sources/{source}/files",
        content=kwargs["content"],
        headers={**manager.headers, **kwargs["headers"]},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0] == {
        "field": "file",
        "code": "invalid_header",
        "message": response.json()["errors"][0]["message"],
    }


def test_a_utf8_file_name_past_latin1_is_kept(api_client: TestClient, manager: ApiUser) -> None:
    # the options parser works on latin-1 text: the name's UTF-8 bytes must survive the round trip
    source = create_source(api_client, manager, type_="csv", name="Uploads", config={})["id"]
    kwargs = _multipart("Liste \u65e5\u672c.csv".encode())
    response = api_client.post(
        f"/api/v1/data-sources/{source}/files",
        content=kwargs["content"],
        headers={**manager.headers, **kwargs["headers"]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "Liste \u65e5\u672c.csv"


def test_a_clean_json_body_still_reaches_the_route(
    api_client: TestClient, manager: ApiUser
) -> None:
    # the guard reads the body to check it; the route must still receive it whole
    response = api_client.post(
        "/api/v1/campaigns",
        json={"name": "Spring \u00e9t\u00e9 \U0001f680"},
        headers=manager.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Spring \u00e9t\u00e9 \U0001f680"


def _cursor(sort: str, value: Any, row_id: Any = "6f1c2b7e-0d4a-4c8e-9f1a-2b3c4d5e6f70") -> str:
    """A well-formed cursor (base64url JSON, as the lists issue them) carrying `value`."""
    raw = json.dumps({"s": sort, "v": value, "i": row_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "sort", "value"),
    [
        ("/api/v1/leads", "-score", "abc"),
        ("/api/v1/leads", "-score", 2**70),
        ("/api/v1/leads", "-score", 2**15),
        ("/api/v1/leads", "-score", {"x": 1}),
        ("/api/v1/leads", "-score", True),
        ("/api/v1/links", "-clicks", 2**70),
        ("/api/v1/links", "-clicks", "abc"),
        ("/api/v1/data-sources", "name", "a\u0000b"),
        ("/api/v1/data-sources", "name", {"x": 1}),
        ("/api/v1/api-keys", "name", "\ud800"),
        ("/api/v1/campaigns", "-created_at", 17),
    ],
)
def test_a_tampered_cursor_value_is_refused_naming_the_cursor(
    api_client: TestClient, manager: ApiUser, path: str, sort: str, value: Any
) -> None:
    # Given a cursor of the right shape whose sort value is not what that column holds
    cursor = _cursor(sort, value)
    # When a list is asked for the page after it
    response = api_client.get(
        path, params={"sort": sort, "cursor": cursor}, headers=manager.headers
    )
    # Then it is a 422 naming the cursor, not a server error from PostgreSQL
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("row_id", [12, ["x"], "not-a-uuid"])
def test_a_tampered_cursor_id_is_refused_naming_the_cursor(
    api_client: TestClient, manager: ApiUser, row_id: Any
) -> None:
    cursor = _cursor("-created_at", "2026-12-01T00:00:00+00:00", row_id)
    response = api_client.get(
        "/api/v1/campaigns", params={"cursor": cursor}, headers=manager.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "cursor"
