"""Per-field size limits (issue 14, lower findings): the probe stored 20 MB JSON fields.

Every free-form JSON field of a request is capped at `MAX_JSON_FIELD_BYTES` of JSON text and
answers 422 naming the field; list items of short text are capped too. The database is checked
to hold nothing of the refused requests.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.schemas.common import MAX_JSON_FIELD_BYTES
from tests.api.conftest import MakeUser
from tests.api.helpers import connectors_registry, create_source  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("connectors_registry")

BIG = {"blob": "x" * (MAX_JSON_FIELD_BYTES + 1)}


def _field(response: Any) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/leads", {"email": "a@b.example", "custom_fields": BIG}, "custom_fields"),
        ("/api/v1/campaigns", {"name": "c", "targeting_criteria": BIG}, "targeting_criteria"),
        ("/api/v1/data-sources", {"type": "vault", "name": "v", "config": BIG}, "config"),
    ],
)
def test_oversized_json_fields_are_refused_naming_the_field(
    api_client: TestClient, make_user: MakeUser, path: str, body: dict[str, Any], field: str
) -> None:
    user = make_user()
    response = api_client.post(path, json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == field and "bytes as JSON" in error["message"]
    # A field just under the limit is fine (the limit is the field's, not a smaller one)
    fits = {"blob": "x" * (MAX_JSON_FIELD_BYTES - 100)}
    body = {**body, field: fits}
    if field == "config":  # a source's config is checked against its connector too
        return
    assert api_client.post(path, json=body, headers=user.headers).status_code == 201


def test_job_params_and_qualification_criteria_are_capped(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    user = make_user()
    source = create_source(api_client, user)
    job = api_client.post(
        "/api/v1/jobs", json={"data_source_id": source["id"], "params": BIG}, headers=user.headers
    )
    assert job.status_code == 422 and _field(job)[0].startswith("params")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0
    lead = api_client.post("/api/v1/leads", json={"email": "q@b.example"}, headers=user.headers)
    assert lead.status_code == 201
    qualify = api_client.post(
        f"/api/v1/leads/{lead.json()['id']}/qualify",
        json={"score": 3, "criteria": BIG},
        headers=user.headers,
    )
    assert qualify.status_code == 422 and _field(qualify)[0].startswith("criteria")


def test_link_list_items_are_short(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    campaign = api_client.post("/api/v1/campaigns", json={"name": "c"}, headers=user.headers)
    body = {
        "destination_url": "https://acme.example/",
        "sources": ["x" * 10_000],
        "mediums": ["email"],
    }
    response = api_client.post(
        f"/api/v1/campaigns/{campaign.json()['id']}/links/bulk", json=body, headers=user.headers
    )
    assert response.status_code == 422 and _field(response)[0].startswith("sources")
