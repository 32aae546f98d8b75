"""What a request costs the database: the statements behind `GET /leads` and the pings.

Benchmark 6 of issue 9 found half of a small request in authentication: `users` and
`memberships` read twice each and a `SELECT 1` ping per pooled checkout. These tests pin the
statements down so the duplicates cannot come back unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.api.conftest import ApiUser, MakeUser
from tests.pool_pings import record_pings

LEADS = "/api/v1/leads?page_size=50"


def acting() -> list[str]:
    """The statement that makes the rest act for the domain (row-level security, issue 20):
    `SET LOCAL` role and domain in one round trip; nothing with `DASHIN_RLS=off`."""
    from models import row_security

    return ["SELECT ?"] if row_security.enabled() else []


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL every engine of this process runs inside the block, as `verb table`."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        table = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", statement, re.I)
        seen.append(f"{statement.split(None, 1)[0].upper()} {table[1] if table else '?'}")

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    return record_pings(monkeypatch)


@pytest.fixture
def manager(api_client: TestClient, make_user: MakeUser) -> ApiUser:
    user = make_user()
    lead = api_client.post("/api/v1/leads", json={"email": "ada@example.com"}, headers=user.headers)
    assert lead.status_code == 201
    assert api_client.get(LEADS, headers=user.auth).status_code == 200  # pool warmed up
    return user


def list_leads(client: TestClient, headers: dict[str, str]) -> list[str]:
    with statements() as seen:
        response = client.get(LEADS, headers=headers)
    assert response.status_code == 200, response.text
    assert [lead["email"] for lead in response.json()["items"]] == ["ada@example.com"]
    return seen


def test_listing_leads_reads_the_caller_once_and_pings_nothing(
    api_client: TestClient, manager: ApiUser, pings: list[object]
) -> None:
    # Default domain, and the same domain named by id: the user query already knows the role.
    for headers in (manager.auth, manager.headers):
        assert list_leads(api_client, headers) == [
            "SELECT users",  # the user with their sign-up domain role, one join
            *acting(),
            "SELECT leads",
            "SELECT lead_sources",
        ]
    assert pings == []  # a connection used a moment ago is not pinged


def test_naming_another_domain_costs_one_query(api_client: TestClient, manager: ApiUser) -> None:
    by_name = {**manager.auth, "Dashin-Domain": manager.domain_name}
    assert list_leads(api_client, by_name) == [
        "SELECT users",
        "SELECT domains",  # the named domain with the caller's role there, one join
        *acting(),
        "SELECT leads",
        "SELECT lead_sources",
    ]


def test_an_api_key_is_one_query_and_records_its_use_once_a_minute(
    api_client: TestClient, manager: ApiUser
) -> None:
    created = api_client.post("/api/v1/api-keys", json={"name": "etl"}, headers=manager.headers)
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    first = list_leads(api_client, key)
    leads = [*acting(), "SELECT leads", "SELECT lead_sources"]
    assert first == ["SELECT api_keys", "UPDATE api_keys", *leads]
    assert list_leads(api_client, key) == ["SELECT api_keys", *leads]
    listed = api_client.get("/api/v1/api-keys", headers=manager.auth).json()["items"]
    assert listed[0]["last_used_at"] is not None
