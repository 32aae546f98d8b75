"""Lead role rules (ARCHITECTURE §7): members see own campaigns' and assigned leads, viewers
read only, other domains get 404, admins act anywhere."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ApiUser, MakeUser

BASE = "/api/v1/leads"


@pytest.fixture
def world(api_client: TestClient, make_user: MakeUser) -> dict[str, Any]:
    """A manager's and a member's campaign with leads, a lead to assign, a lead in no campaign."""
    manager = make_user(domain_name="acme.com")
    member = make_user(domain_name="acme.com", role="member")
    viewer = make_user(domain_name="acme.com", role="viewer")
    h = manager.headers
    mgr_campaign = api_client.post("/api/v1/campaigns", json={"name": "M"}, headers=h).json()
    mem_campaign = api_client.post(
        "/api/v1/campaigns", json={"name": "Mine"}, headers=member.headers
    ).json()

    def lead(email: str, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = api_client.post(
            BASE, json={"email": email, **extra}, headers=h
        ).json()
        return body

    return {
        "manager": manager,
        "member": member,
        "viewer": viewer,
        "mem_campaign": mem_campaign,
        "managers_lead": lead("m@x.example", campaign_id=mgr_campaign["id"]),
        "members_lead": lead("own@x.example", campaign_id=mem_campaign["id"]),
        "assigned_lead": lead("as@x.example", campaign_id=mgr_campaign["id"]),
        "loose_lead": lead("loose@x.example"),
    }


def emails(client: TestClient, user: ApiUser, **params: Any) -> set[str]:
    response = client.get(BASE, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return {item["email"] for item in response.json()["items"]}


def test_member_sees_own_campaign_and_assigned_leads_only(
    api_client: TestClient, world: dict[str, Any]
) -> None:
    manager, member = world["manager"], world["member"]
    api_client.post(
        f"{BASE}/{world['assigned_lead']['id']}/assign",
        json={"user_id": str(member.user_id)},
        headers=manager.headers,
    )
    assert emails(api_client, member) == {"own@x.example", "as@x.example"}
    assert emails(api_client, manager) == {
        "m@x.example",
        "own@x.example",
        "as@x.example",
        "loose@x.example",
    }
    assert emails(api_client, world["viewer"]) == emails(api_client, manager)
    hidden = world["managers_lead"]["id"]
    for method, url, body in (
        ("GET", f"{BASE}/{hidden}", None),
        ("PATCH", f"{BASE}/{hidden}", {"priority": "high"}),
        ("DELETE", f"{BASE}/{hidden}", None),
        ("POST", f"{BASE}/{hidden}/qualify", {"score": 5}),
    ):
        assert (
            api_client.request(method, url, json=body, headers=member.headers).status_code == 404
        ), (method, url)
    ok = api_client.patch(
        f"{BASE}/{world['members_lead']['id']}",
        json={"status": "contacted"},
        headers=member.headers,
    )
    assert ok.status_code == 200
    # bulk by a member touches only visible leads; the rest are not_found
    ids = [world["managers_lead"]["id"], world["members_lead"]["id"]]
    bulk = api_client.post(
        f"{BASE}/bulk",
        json={"action": "update", "ids": ids, "update": {"priority": "low"}},
        headers=member.headers,
    ).json()
    assert {r["id"]: r["ok"] for r in bulk["results"]} == {ids[0]: False, ids[1]: True}
    csv_text = api_client.get(f"{BASE}/export", headers=member.headers).text
    assert "own@x.example" in csv_text and "m@x.example" not in csv_text


def test_member_created_leads_stay_visible_to_them(
    api_client: TestClient, world: dict[str, Any]
) -> None:
    member = world["member"]
    loose = api_client.post(BASE, json={"email": "new@x.example"}, headers=member.headers)
    assert loose.status_code == 201 and loose.json()["assigned_to"] == str(member.user_id)
    own = api_client.post(
        BASE,
        json={"email": "n2@x.example", "campaign_id": world["mem_campaign"]["id"]},
        headers=member.headers,
    )
    assert own.status_code == 201 and own.json()["assigned_to"] is None
    assert {"new@x.example", "n2@x.example"} <= emails(api_client, member)
    # not into someone else's campaign, and no merging into a lead they cannot see
    foreign = api_client.post(
        BASE,
        json={"email": "n3@x.example", "campaign_id": world["managers_lead"]["campaign_id"]},
        headers=member.headers,
    )
    assert foreign.status_code == 422
    clash = api_client.post(
        BASE, json={"email": "m@x.example", "phone": "1"}, headers=member.headers
    )
    assert clash.status_code == 409 and "m@x.example" not in clash.text
    assert (
        api_client.get(
            f"{BASE}/{world['managers_lead']['id']}", headers=world["manager"].headers
        ).json()["phone"]
        is None
    )


def test_viewer_cannot_write(api_client: TestClient, world: dict[str, Any]) -> None:
    viewer, lead_id = world["viewer"], world["loose_lead"]["id"]
    assert api_client.get(f"{BASE}/{lead_id}", headers=viewer.headers).status_code == 200
    for method, url, body in (
        ("POST", BASE, {"email": "v@x.example"}),
        ("PATCH", f"{BASE}/{lead_id}", {"priority": "high"}),
        ("DELETE", f"{BASE}/{lead_id}", None),
        ("POST", f"{BASE}/{lead_id}/qualify", {"score": 4}),
        ("POST", f"{BASE}/{lead_id}/assign", {"user_id": str(viewer.user_id)}),
        ("POST", f"{BASE}/bulk", {"action": "delete", "ids": [lead_id]}),
    ):
        assert (
            api_client.request(method, url, json=body, headers=viewer.headers).status_code == 403
        ), (method, url)


def test_member_cannot_assign_even_in_bulk(api_client: TestClient, world: dict[str, Any]) -> None:
    member = world["member"]
    body = {
        "action": "assign",
        "ids": [world["members_lead"]["id"]],
        "assign": {"user_id": str(member.user_id)},
    }
    assert api_client.post(f"{BASE}/bulk", json=body, headers=member.headers).status_code == 403


def test_other_domains_get_404_and_admins_act_anywhere(
    api_client: TestClient, make_user: MakeUser, world: dict[str, Any]
) -> None:
    manager, lead_id = world["manager"], world["loose_lead"]["id"]
    stranger = make_user(domain_name="other.example")
    posing = ApiUser(**{**stranger.__dict__, "domain_id": manager.domain_id})
    assert api_client.get(BASE, headers=posing.headers).status_code == 404
    # in their own domain the lead simply does not exist
    assert api_client.get(f"{BASE}/{lead_id}", headers=stranger.headers).status_code == 404
    assert (
        api_client.patch(
            f"{BASE}/{lead_id}", json={"priority": "high"}, headers=stranger.headers
        ).status_code
        == 404
    )
    assert emails(api_client, stranger) == set()
    bulk = api_client.post(
        f"{BASE}/bulk", json={"action": "delete", "ids": [lead_id]}, headers=stranger.headers
    ).json()
    assert bulk["results"] == [
        {"id": lead_id, "ok": False, "code": "not_found", "message": "lead not found"}
    ]
    admin = make_user(domain_name=manager.domain_name, role="admin")
    assert api_client.get(f"{BASE}/{lead_id}", headers=admin.headers).status_code == 200
    # the same email in another domain is another lead (identity is per domain)
    other = api_client.post(BASE, json={"email": "loose@x.example"}, headers=stranger.headers)
    assert other.status_code == 201 and other.json()["id"] != lead_id
