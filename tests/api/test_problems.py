"""The problem-details shape: how errors from anywhere reach clients, and the ops endpoints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.problems import field_path
from runtime.errors import (
    ConfigurationError,
    FieldError,
    InvalidTransition,
    ValidationFailed,
)
from runtime.settings import reset_settings_cache

SECRET = "s3cr3t-in-a-message"


@pytest.fixture
def failing_client(api_client: TestClient) -> Iterator[TestClient]:
    """The app plus routes that raise, as a route deep in the stack would."""
    app: FastAPI = api_client.app  # type: ignore[assignment]

    @app.get("/boom/transition")
    def transition() -> None:
        raise InvalidTransition("job-1", "pause", "completed")

    @app.get("/boom/validation")
    def validation() -> None:
        raise ValidationFailed("bad", [FieldError("params.limit", "too_big", "at most 10")])

    @app.get("/boom/config")
    def config() -> None:
        raise ConfigurationError(f"DASHIN_SECRET_KEY={SECRET} is malformed")

    @app.get("/boom/bug")
    def bug() -> None:
        raise RuntimeError(f"password={SECRET}")

    yield api_client


def test_unknown_route_is_a_problem(api_client: TestClient) -> None:
    response = api_client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"} and body["status"] == 404


def test_wrong_method_is_a_problem(api_client: TestClient) -> None:
    response = api_client.put("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


def test_request_validation_names_fields_without_the_body_prefix(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/auth/login", json={"email": "nope"})
    assert response.status_code == 422
    errors = {e["field"]: e["code"] for e in response.json()["errors"]}
    assert errors == {"email": "value_error", "password": "missing"}


def test_malformed_json_is_a_validation_problem(api_client: TestClient) -> None:
    response = api_client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "json_invalid"


def test_invalid_transition_carries_the_job_status(failing_client: TestClient) -> None:
    response = failing_client.get("/boom/transition")
    assert response.status_code == 409
    assert response.json()["job_status"] == "completed"
    assert response.json()["type"] == "urn:dashin:problem:invalid_transition"


def test_validation_failed_lists_field_errors(failing_client: TestClient) -> None:
    response = failing_client.get("/boom/validation")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "params.limit", "code": "too_big", "message": "at most 10"}
    ]


@pytest.mark.parametrize("path", ["/boom/config", "/boom/bug"])
def test_server_errors_reveal_nothing(failing_client: TestClient, path: str) -> None:
    response = failing_client.get(path)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert SECRET not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "email"), "email"),
        (("body", "items", 0, "name"), "items.0.name"),
        (("body",), "body"),
        (("query", "page_size"), "page_size"),
        (("header", "Dashin-Domain"), "Dashin-Domain"),
    ],
)
def test_field_path(loc: tuple[str | int, ...], expected: str) -> None:
    assert field_path(loc) == expected


def test_openapi_document_is_served(api_client: TestClient) -> None:
    spec = api_client.get("/api/v1/openapi.json").json()
    assert "/api/v1/campaigns" in spec["paths"] and "/healthz" in spec["paths"]
    assert api_client.get("/docs").status_code == 200


def test_healthz_and_readyz(api_client: TestClient) -> None:
    assert api_client.get("/healthz").json() == {"status": "ok"}
    ready = api_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_fails_when_redis_is_unreachable(
    api_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_settings_cache()
    response = api_client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "unreachable: redis"
    assert api_client.get("/healthz").status_code == 200
