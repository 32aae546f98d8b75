"""`POST /jobs` with `"estimate": true`: matches and credits from one free search, nothing made."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.sandbox.apollo import ApolloEmulator
from models import Job
from tests.api.conftest import MakeUser

API = "/api/v1"


def test_an_estimate_counts_matches_and_credits_and_creates_nothing(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    with ApolloEmulator(people=120, seed=4) as emu:  # type: ignore[call-arg]
        source = api_client.post(
            f"{API}/data-sources",
            json={
                "type": "apollo",
                "name": "Apollo",
                "config": {
                    "api_key": "apollo-test-key",
                    "base_url": emu.url + "/api/v1",
                    "enrich": True,
                },
            },
            headers=manager.headers,
        )
        assert source.status_code == 201, source.text
        source_id = source.json()["id"]
        body = {"data_source_id": source_id, "estimate": True}
        plain = api_client.post(f"{API}/jobs", json=body, headers=manager.headers)
        capped = api_client.post(
            f"{API}/jobs", json={**body, "params": {"max_credits": 30}}, headers=manager.headers
        )
        budget = api_client.patch(
            f"{API}/data-sources/{source_id}/credit-budget",
            json={"job_credit_budget": 10},
            headers=manager.headers,
        )
        assert budget.status_code == 200, budget.text
        budgeted = api_client.post(f"{API}/jobs", json=body, headers=manager.headers)
        spent = emu.credits_used
    assert plain.status_code == 200, plain.text
    assert plain.json() == {
        "data_source_id": source_id,
        "matches": 120,
        "credits": 120,
        "budget_left": None,
    }
    assert capped.json()["credits"] == 30
    assert (budgeted.json()["credits"], budgeted.json()["budget_left"]) == (10, 10)
    assert spent == 0
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
