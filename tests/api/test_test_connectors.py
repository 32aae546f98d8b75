"""The probe's H1 reproduction through the API (issue 14): where test-only connectors are off
(the default), a tenant can neither see nor create a `synthetic` source, so no job of theirs
can carry `crash_on_page` to a worker. (`tests/connectors/test_registry.py` covers the
registry itself.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from connectors import registry
from runtime.settings import reset_settings_cache
from tests.api.conftest import MakeUser


@pytest.fixture
def test_connectors_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHIN_TEST_CONNECTORS", "0")
    reset_settings_cache()
    registry.available.cache_clear()
    yield
    monkeypatch.undo()
    reset_settings_cache()
    registry.available.cache_clear()


@pytest.mark.usefixtures("test_connectors_off")
def test_a_tenant_cannot_create_a_synthetic_source_to_crash_workers(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    listed = api_client.get("/api/v1/connectors", headers=manager.headers)
    assert listed.status_code == 200
    types = {item["type"] for item in listed.json()["items"]}
    assert "synthetic" not in types and "csv" in types
    body = {"type": "synthetic", "name": "poison", "config": {"total": 10}}
    created = api_client.post("/api/v1/data-sources", json=body, headers=manager.headers)
    assert created.status_code == 422, created.text
    assert "synthetic" in created.text
