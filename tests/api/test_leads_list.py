"""`GET /leads` builds its page from plain rows and dicts, not `LeadOut` models: its bytes must
stay exactly those of `Page[LeadOut]` built from the ORM leads, and of `GET /leads/{id}`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api.pagination import Page
from api.schemas.leads import ITEM_COLUMNS, LeadItem, LeadOut
from models import leads_repo
from models.leads import Lead
from models.leads_sink import write_page
from records import LeadRecord
from tests import factories
from tests.api.conftest import ApiUser, MakeUser

BASE = "/api/v1/leads"
PAGE_OF_LEADS = TypeAdapter(Page[LeadOut])


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user()


def reference(engine: Engine, ids: list[str], next_cursor: str | None, total: int | None) -> bytes:
    """The page as the ORM + `LeadOut` serializer answered it before the plain-row path."""
    lead_ids = [uuid.UUID(i) for i in ids]
    with Session(engine) as session:
        leads = {
            lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_(lead_ids)))
        }
        sources = leads_repo.sources_of(session, lead_ids)
        page = Page[LeadOut](
            items=[LeadOut.of(leads[i], sources[i]) for i in lead_ids],
            next_cursor=next_cursor,
            total=total,
        )
    return PAGE_OF_LEADS.dump_json(page)


def seed(
    api_client: TestClient, manager: ApiUser, member: ApiUser, engine: Engine, db_url: str
) -> None:
    """A lead with every field set (odd JSON values, provenance from two jobs, a qualification,
    an assignee, a campaign) next to bare ones."""
    campaign = api_client.post("/api/v1/campaigns", json={"name": "C"}, headers=manager.headers)
    assert campaign.status_code == 201, campaign.text
    full = api_client.post(
        BASE,
        json={
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace \u00e9\u00e8 \U0001f600",
            "title": 'Chief "Engine" Officer\n',
            "company": {
                "name": "Analytical",
                "domain": "ae.example",
                "industry": "Math",
                "size": "1-10",
            },
            "linkedin_url": "linkedin.com/in/ada",
            "phone": "+44 1",
            "location": {"city": "London", "state": "Greater London", "country": "GB"},
            "priority": "high",
            "tags": ["vip", "\u00fcnicode", ""],
            "custom_fields": {
                "float": 1.5,
                "whole_float": 2.0,
                "big": 123456789012345678901234567890,
                "neg": -7,
                "nested": {"list": [1, None, "x", True, {"k": []}]},
                "text": 'quote " backslash \\ tab \t',
            },
            "campaign_id": campaign.json()["id"],
        },
        headers=manager.headers,
    )
    assert full.status_code == 201, full.text
    lead_id = full.json()["id"]
    qualified = api_client.post(
        f"{BASE}/{lead_id}/qualify",
        json={"score": 4, "criteria": {"budget": True, "ratio": 0.1}, "notes": "ok"},
        headers=manager.headers,
    )
    assert qualified.status_code == 200, qualified.text
    assigned = api_client.post(
        f"{BASE}/{lead_id}/assign", json={"user_id": str(member.user_id)}, headers=manager.headers
    )
    assert assigned.status_code == 200, assigned.text
    source = factories.make_source(engine, manager.domain_id, "apollo")
    for n in range(2):
        job = factories.make_job(engine, manager.domain_id, source)
        with psycopg.connect(db_url) as conn:
            write_page(
                conn,
                domain_id=manager.domain_id,
                data_source_id=source,
                job_id=job,
                provider="apollo",
                records=[
                    LeadRecord(email="ada@example.com", external_id=f"ap-{n}"),
                    LeadRecord(email=f"bare{n}@example.com"),
                ],
            )
    for n in range(3):
        bare = api_client.post(
            BASE, json={"email": f"hand{n}@example.com"}, headers=manager.headers
        )
        assert bare.status_code == 201, bare.text


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "-score", "updated_at"])
def test_list_pages_are_the_bytes_of_the_lead_out_serializer(
    api_client: TestClient,
    manager: ApiUser,
    make_user: MakeUser,
    engine: Engine,
    db_url: str,
    sort: str,
) -> None:
    member = make_user(domain_name=manager.domain_name, role="member")
    seed(api_client, manager, member, engine, db_url)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"sort": sort, "page_size": 2, "count": "true"}
        if cursor:
            params["cursor"] = cursor
        response = api_client.get(BASE, params=params, headers=manager.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        ids = [item["id"] for item in body["items"]]
        assert response.content == reference(engine, ids, body["next_cursor"], 6)
        seen += ids
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(set(seen)) == 6
    # without count=true there is no `total` key, as before
    plain = api_client.get(BASE, params={"sort": sort}, headers=manager.headers)
    ids = [item["id"] for item in plain.json()["items"]]
    assert plain.content == reference(engine, ids, None, None)
    # and each item is the single-lead answer, byte for byte
    for item in json.loads(plain.content)["items"]:
        single = api_client.get(f"{BASE}/{item['id']}", headers=manager.headers)
        assert (
            single.content == json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
        )
        assert single.json() == item


def test_the_full_lead_shows_every_field(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser, engine: Engine, db_url: str
) -> None:
    member = make_user(domain_name=manager.domain_name, role="member")
    seed(api_client, manager, member, engine, db_url)
    items = api_client.get(BASE, params={"q": "ada"}, headers=manager.headers).json()["items"]
    assert len(items) == 1
    ada = items[0]
    assert ada["assigned_to"] == str(member.user_id) and ada["campaign_id"] is not None
    assert ada["qualification"]["criteria"] == {"budget": True, "ratio": 0.1}
    assert ada["custom_fields"]["big"] == 123456789012345678901234567890
    assert ada["tags"] == ["vip", "\u00fcnicode", ""]
    assert ada["company"]["size"] == "1-10" and ada["location"]["state"] == "Greater London"
    assert [s["external_id"] for s in ada["sources"]] == [None, "ap-0", "ap-1"]


def test_a_list_item_has_the_fields_of_lead_out_in_its_order() -> None:
    assert list(LeadItem.__annotations__) == list(LeadOut.model_fields)
    # every lead column but the soft-delete mark reaches the item
    assert set(ITEM_COLUMNS) == {c.key for c in Lead.__table__.c} - {"deleted_at"}


def test_reused_list_statements_take_each_request_values(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser
) -> None:
    """The list statement is built once per shape; the values must still be this request's."""
    other = make_user()
    member = make_user(domain_name=manager.domain_name, role="member")
    peer = make_user(domain_name=manager.domain_name, role="member")
    mine = {
        user.email: api_client.post(
            BASE,
            json={"email": f"of-{user.user_id}@example.com", "priority": "high"},
            headers=manager.headers if user is not other else other.headers,
        ).json()["id"]
        for user in (manager, other, member, peer)
    }
    for user in (member, peer):
        assigned = api_client.post(
            f"{BASE}/{mine[user.email]}/assign",
            json={"user_id": str(user.user_id)},
            headers=manager.headers,
        )
        assert assigned.status_code == 200, assigned.text

    def listed(user: ApiUser, **params: Any) -> set[str]:
        response = api_client.get(BASE, params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    home = {mine[u.email] for u in (manager, member, peer)}
    for _ in range(2):  # twice: the second round runs on cached statements
        assert listed(manager) == home and listed(other) == {mine[other.email]}
        assert listed(member) == {mine[member.email]} and listed(peer) == {mine[peer.email]}
        assert listed(manager, assigned_to=str(peer.user_id)) == {mine[peer.email]}
        assert listed(manager, assigned_to=str(member.user_id)) == {mine[member.email]}
        assert listed(member, priority="high") == {mine[member.email]}
        assert listed(other, priority="low") == set()
        first = api_client.get(BASE, params={"page_size": 1}, headers=manager.headers).json()
        rest = listed(manager, page_size=5, cursor=first["next_cursor"])
        assert {first["items"][0]["id"], *rest} == home and len(rest) == 2
