"""`/credits`, `/data-sources/{id}/credits` and the credit budgets, through the API."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from models.credits import CreditEntry
from tests.api.conftest import MakeUser
from tests.api.helpers import connectors_registry, create_source  # noqa: F401

pytestmark = pytest.mark.usefixtures("connectors_registry")
API = "/api/v1"


def test_budgets_and_the_ledger_by_source_and_day(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    member = make_user(manager.domain_name, role="member")
    one = create_source(api_client, manager, name="One")
    two = create_source(api_client, manager, name="Two")
    today = datetime.now(UTC).date()
    old = date(2020, 1, 2)
    with Session(engine) as session, session.begin():
        for source, day, spent in ((one, old, 7), (one, today, 30), (two, today, 5)):
            session.execute(
                insert(CreditEntry).values(
                    domain_id=manager.domain_id,
                    data_source_id=uuid.UUID(source["id"]),
                    day=day,
                    credits=spent,
                )
            )
    everything = api_client.get(f"{API}/credits", headers=member.headers).json()
    assert everything["total"] == 42 and len(everything["items"]) == 3
    recent = api_client.get(
        f"{API}/credits", params={"from": str(today)}, headers=member.headers
    ).json()
    assert recent["total"] == 35
    mine = api_client.get(
        f"{API}/data-sources/{one['id']}/credits",
        params={"from": "2020-01-01", "to": "2020-01-31"},
        headers=member.headers,
    ).json()
    assert [(i["day"], i["credits"]) for i in mine["items"]] == [("2020-01-02", 7)]

    url = f"{API}/data-sources/{one['id']}/credit-budget"
    body = {"monthly_credit_budget": 100, "job_credit_budget": 50}
    assert api_client.patch(url, json=body, headers=member.headers).status_code == 403
    set_ = api_client.patch(url, json=body, headers=manager.headers)
    assert set_.status_code == 200, set_.text
    assert set_.json() == {
        "data_source_id": one["id"],
        "monthly_credit_budget": 100,
        "job_credit_budget": 50,
        "month_spent": 30,
        "balance": None,
        "balance_at": None,
    }
    cleared = api_client.patch(url, json={"job_credit_budget": None}, headers=manager.headers)
    assert cleared.json()["job_credit_budget"] is None
    assert cleared.json()["monthly_credit_budget"] == 100
