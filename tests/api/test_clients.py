"""Clients (issue 18, item 1): CRUD and roles, `client_id` on campaigns and its filters, and a
viewer limited to clients, who reads only their campaigns, leads, links and analytics (404 for
the rest) and nothing else (403), in the API and the console."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api import sse
from tests.api.conftest import PASSWORD, ApiUser, MakeUser
from tests.api.helpers import (
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
)
from tests.api.sse_client import read_events, take_until
from tests.api.test_console import _csrf

API = "/api/v1"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _ids(page: dict[str, Any]) -> set[str]:
    return {item["id"] for item in page["items"]}


@dataclass
class Agency:
    """A domain with two clients, a campaign of each and one of none, each with a lead and a
    link; `viewer` is limited to `globex` only."""

    manager: ApiUser
    viewer: ApiUser
    globex: str
    initech: str
    campaigns: dict[str, str]
    leads: dict[str, str]
    links: dict[str, str]


@pytest.fixture
def agency(api_client: TestClient, make_user: MakeUser) -> Agency:
    manager = make_user()
    viewer = make_user(manager.domain_name, role="viewer")
    h = manager.headers
    globex = _ok(api_client.post(f"{API}/clients", json={"name": "Globex"}, headers=h), 201)
    initech = _ok(
        api_client.post(
            f"{API}/clients",
            json={"name": "Initech", "contact": "bill@initech.example", "notes": "pays late"},
            headers=h,
        ),
        201,
    )
    campaigns, leads, links = {}, {}, {}
    for name, client_id in (("globex", globex["id"]), ("initech", initech["id"]), ("none", None)):
        body = {"name": f"{name} outreach", "client_id": client_id}
        campaign = _ok(api_client.post(f"{API}/campaigns", json=body, headers=h), 201)
        assert campaign["client_id"] == client_id
        campaigns[name] = campaign["id"]
        lead = {"email": f"{name}-lead@people.example", "campaign_id": campaign["id"]}
        leads[name] = _ok(api_client.post(f"{API}/leads", json=lead, headers=h), 201)["id"]
        link = {"destination_url": f"https://{name}.example", "utm_source": "s", "utm_medium": "m"}
        url = f"{API}/campaigns/{campaign['id']}/links"
        links[name] = _ok(api_client.post(url, json=link, headers=h), 201)["id"]
    limit = {"client_ids": [globex["id"]]}
    member_url = f"{API}/domains/{manager.domain_id}/members/{viewer.user_id}"
    limited = _ok(api_client.patch(member_url, json=limit, headers=h))
    assert limited["role"] == "viewer" and limited["client_ids"] == [globex["id"]]
    return Agency(manager, viewer, globex["id"], initech["id"], campaigns, leads, links)


def test_crud_roles_and_names(api_client: TestClient, make_user: MakeUser) -> None:
    manager = make_user()
    member = make_user(manager.domain_name, role="member")
    viewer = make_user(manager.domain_name, role="viewer")
    h = manager.headers
    created = _ok(api_client.post(f"{API}/clients", json={"name": "Acme"}, headers=h), 201)
    assert created["contact"] is None and created["domain_id"] == str(manager.domain_id)
    same_name = api_client.post(f"{API}/clients", json={"name": "ACME"}, headers=h)
    assert same_name.status_code == 409
    refused = api_client.post(f"{API}/clients", json={"name": "Hooli"}, headers=member.headers)
    assert refused.status_code == 403
    for reader in (member, viewer):
        assert _ids(_ok(api_client.get(f"{API}/clients", headers=reader.headers))) == {
            created["id"]
        }
    url = f"{API}/clients/{created['id']}"
    assert api_client.patch(url, json={"notes": "x"}, headers=viewer.headers).status_code == 403
    nulled = api_client.patch(url, json={"name": None}, headers=h)
    assert nulled.status_code == 422 and nulled.json()["errors"][0]["field"] == "name"
    changed = _ok(api_client.patch(url, json={"contact": "wile@acme.example"}, headers=h))
    assert changed["contact"] == "wile@acme.example" and changed["name"] == "Acme"
    other = _ok(api_client.post(f"{API}/clients", json={"name": "Hooli"}, headers=h), 201)
    clash = api_client.patch(f"{API}/clients/{other['id']}", json={"name": "acme"}, headers=h)
    assert clash.status_code == 409
    found = _ok(api_client.get(f"{API}/clients", params={"q": "hoo"}, headers=h))
    assert _ids(found) == {other["id"]}

    campaign = _ok(
        api_client.post(
            f"{API}/campaigns", json={"name": "c", "client_id": created["id"]}, headers=h
        ),
        201,
    )
    busy = api_client.delete(url, headers=h)
    assert busy.status_code == 409 and "1 campaign" in busy.json()["detail"]
    cleared = api_client.patch(
        f"{API}/campaigns/{campaign['id']}", json={"client_id": None}, headers=h
    )
    assert _ok(cleared)["client_id"] is None
    assert api_client.delete(url, headers=member.headers).status_code == 403
    _ok(api_client.delete(url, headers=h), 204)
    assert api_client.get(url, headers=h).status_code == 404


def test_filters_by_client(api_client: TestClient, agency: Agency) -> None:
    h = agency.manager.headers
    by = {"client_id": agency.globex}
    assert _ids(_ok(api_client.get(f"{API}/campaigns", params=by, headers=h))) == {
        agency.campaigns["globex"]
    }
    assert len(_ok(api_client.get(f"{API}/campaigns", headers=h))["items"]) == 3
    assert _ids(_ok(api_client.get(f"{API}/leads", params=by, headers=h))) == {
        agency.leads["globex"]
    }
    assert _ids(_ok(api_client.get(f"{API}/links", params=by, headers=h))) == {
        agency.links["globex"]
    }
    assert _ids(_ok(api_client.get(f"{API}/links", headers=h))) == set(agency.links.values())
    overview = _ok(api_client.get(f"{API}/analytics/overview", params=by, headers=h))
    assert overview["new_leads"] == 1
    assert [c["id"] for c in overview["top_campaigns"]] == [agency.campaigns["globex"]]
    assert _ok(api_client.get(f"{API}/analytics/overview", headers=h))["new_leads"] == 3
    leads = _ok(api_client.get(f"{API}/analytics/leads", params=by, headers=h))
    assert leads["leads"] == 1
    top = _ok(api_client.get(f"{API}/analytics/top-campaigns", params=by, headers=h))
    assert [c["id"] for c in top["items"]] == [agency.campaigns["globex"]]
    export = api_client.get(f"{API}/leads/export", params=by, headers=h)
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["email"] for r in rows] == ["globex-lead@people.example"]


def test_client_ids_of_other_domains_are_refused_without_echo(
    api_client: TestClient, make_user: MakeUser, agency: Agency
) -> None:
    other = make_user()
    foreign = _ok(
        api_client.post(f"{API}/clients", json={"name": "Elsewhere"}, headers=other.headers), 201
    )["id"]
    h = agency.manager.headers
    for client_id in (foreign, str(uuid.uuid4())):
        created = api_client.post(
            f"{API}/campaigns", json={"name": "x", "client_id": client_id}, headers=h
        )
        assert created.status_code == 422
        assert [e["field"] for e in created.json()["errors"]] == ["client_id"]
        assert client_id not in created.text
        moved = api_client.patch(
            f"{API}/campaigns/{agency.campaigns['none']}", json={"client_id": client_id}, headers=h
        )
        assert moved.status_code == 422 and client_id not in moved.text
    member_url = f"{API}/domains/{agency.manager.domain_id}/members/{agency.viewer.user_id}"
    limited = api_client.patch(member_url, json={"client_ids": [agency.globex, foreign]}, headers=h)
    assert limited.status_code == 422
    assert [e["field"] for e in limited.json()["errors"]] == ["client_ids"]
    assert "client_ids[1]" in limited.text and foreign not in limited.text
    # the viewer's limit is untouched by the refused call
    assert _ids(_ok(api_client.get(f"{API}/campaigns", headers=agency.viewer.headers))) == {
        agency.campaigns["globex"]
    }


def test_only_viewers_are_limited(
    api_client: TestClient, make_user: MakeUser, agency: Agency
) -> None:
    h = agency.manager.headers
    member = make_user(agency.manager.domain_name, role="member")
    url = f"{API}/domains/{agency.manager.domain_id}/members/{member.user_id}"
    refused = api_client.patch(url, json={"client_ids": [agency.globex]}, headers=h)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["client_ids"]
    # a limited viewer made a member stops being limited; null lifts a viewer's limit
    viewer_url = f"{API}/domains/{agency.manager.domain_id}/members/{agency.viewer.user_id}"
    promoted = _ok(api_client.patch(viewer_url, json={"role": "member"}, headers=h))
    assert promoted["role"] == "member" and promoted["client_ids"] is None
    back = _ok(api_client.patch(viewer_url, json={"role": "viewer"}, headers=h))
    assert back["client_ids"] is None
    assert len(_ok(api_client.get(f"{API}/campaigns", headers=agency.viewer.headers))["items"]) == 3
    nulled = api_client.patch(viewer_url, json={"role": None}, headers=h)
    assert nulled.status_code == 422 and nulled.json()["errors"][0]["field"] == "role"


def test_a_limited_viewer_reads_only_their_clients(api_client: TestClient, agency: Agency) -> None:
    v = agency.viewer.headers
    mine, theirs = "globex", "initech"

    assert _ids(_ok(api_client.get(f"{API}/campaigns", headers=v))) == {agency.campaigns[mine]}
    asked_other = api_client.get(
        f"{API}/campaigns", params={"client_id": agency.initech}, headers=v
    )
    assert _ok(asked_other)["items"] == []
    assert _ids(_ok(api_client.get(f"{API}/leads", headers=v))) == {agency.leads[mine]}
    assert _ids(_ok(api_client.get(f"{API}/links", headers=v))) == {agency.links[mine]}
    clients = _ok(api_client.get(f"{API}/clients", headers=v))["items"]
    assert [c["id"] for c in clients] == [agency.globex] and clients[0]["notes"] is None
    export = api_client.get(f"{API}/leads/export", headers=v)
    assert [r["email"] for r in csv.DictReader(io.StringIO(export.text))] == [
        "globex-lead@people.example"
    ]
    for path in (
        f"/campaigns/{agency.campaigns[mine]}",
        f"/leads/{agency.leads[mine]}",
        f"/links/{agency.links[mine]}",
        f"/links/{agency.links[mine]}/analytics",
        f"/campaigns/{agency.campaigns[mine]}/links",
        f"/analytics/campaigns/{agency.campaigns[mine]}",
        f"/clients/{agency.globex}",
    ):
        assert api_client.get(f"{API}{path}", headers=v).status_code == 200, path
    for name in (theirs, "none"):
        for path in (
            f"/campaigns/{agency.campaigns[name]}",
            f"/leads/{agency.leads[name]}",
            f"/leads/{agency.leads[name]}/sources",
            f"/links/{agency.links[name]}",
            f"/links/{agency.links[name]}/analytics",
            f"/campaigns/{agency.campaigns[name]}/links",
            f"/analytics/campaigns/{agency.campaigns[name]}",
            f"/analytics/leads?campaign_id={agency.campaigns[name]}",
        ):
            assert api_client.get(f"{API}{path}", headers=v).status_code == 404, path
    assert api_client.get(f"{API}/clients/{agency.initech}", headers=v).status_code == 404
    # a text search builds its statement per request: the limit holds there too
    searched = _ok(api_client.get(f"{API}/leads", params={"q": "lead"}, headers=v))
    assert _ids(searched) == {agency.leads[mine]}
    overview = _ok(api_client.get(f"{API}/analytics/overview", headers=v))
    assert overview["new_leads"] == 1 and overview["leads_total"] == 1
    assert [c["id"] for c in overview["top_campaigns"]] == [agency.campaigns[mine]]

    for path in (
        "/jobs",
        "/data-sources",
        "/schedules",
        "/notifications",
        "/webhooks",
        f"/domains/{agency.manager.domain_id}/members",
    ):
        refused = api_client.get(f"{API}{path}", headers=v)
        assert refused.status_code == 403, path
        assert "limited to clients" in refused.json()["detail"], path
    # the live feed is open to them, with their clients' part only (the next test)
    with api_client.websocket_connect(f"{API}/ws", headers=v) as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["domain_id"] == str(agency.manager.domain_id)
    # the unlimited viewer of the same domain reads everything
    assert (
        len(_ok(api_client.get(f"{API}/campaigns", headers=agency.manager.headers))["items"]) == 3
    )


@pytest.mark.usefixtures("connectors_registry")
def test_a_limited_viewer_follows_only_their_clients_part_of_the_live_feed(
    api_client: TestClient, agency: Agency
) -> None:
    """`/events` for a viewer limited to Globex: Globex's campaign and its leads' ids, no
    other client's, no source, no job; a bulk change of both clients' leads names only
    Globex's. The last change is Globex's: events come in commit order, so whatever else was
    to arrive has arrived by then."""
    h = agency.manager.headers
    mine, theirs = agency.campaigns["globex"], agency.campaigns["initech"]
    with api_client.stream("GET", f"{API}/events", headers=agency.viewer.headers) as response:
        assert response.status_code == 200
        events = read_events(response)
        take_until(events, lambda e: e.event == "ready")
        other = {"email": "other@initech.example", "campaign_id": theirs}
        hidden = _ok(api_client.post(f"{API}/leads", json=other, headers=h), 201)["id"]
        create_source(api_client, agency.manager)
        _ok(api_client.patch(f"{API}/campaigns/{theirs}", json={"objective": "x"}, headers=h))
        own = {"email": "new@globex.example", "campaign_id": mine}
        shown = _ok(api_client.post(f"{API}/leads", json=own, headers=h), 201)["id"]
        both = {"action": "update", "ids": [hidden, shown], "update": {"priority": "high"}}
        _ok(api_client.post(f"{API}/leads/bulk", json=both, headers=h))
        _ok(api_client.patch(f"{API}/campaigns/{mine}", json={"objective": "y"}, headers=h))
        seen = take_until(events, lambda e: e.event == "campaign.updated")

    entity = [e for e in seen if e.event and e.event.split(".")[0] in ("lead", "campaign")]
    assert [e.event for e in entity] == ["lead.created", "lead.updated", "campaign.updated"]
    assert entity[0].json()["ids"] == [shown] and entity[0].json()["count"] == 1
    assert entity[1].json()["ids"] == [shown] and entity[1].json()["count"] == 1
    assert entity[2].json()["id"] == mine
    assert not [e for e in seen if e.event and e.event.startswith(("data_source.", "job_"))]
    metrics = {e.json()["campaign_id"] for e in seen if e.event == "campaign_metrics"}
    assert metrics <= {mine}
    assert hidden not in "".join(e.data for e in seen) and theirs not in "".join(
        e.data for e in seen
    )


def test_the_console_shows_a_limited_viewer_their_clients_leads_only(
    api_client: TestClient, agency: Agency
) -> None:
    form = api_client.get("/console/login")
    answer = api_client.post(
        "/console/login",
        data={"csrf_token": _csrf(form.text), "email": agency.viewer.email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/leads"
    page = api_client.get("/console/leads")
    assert page.status_code == 200, page.text
    assert "globex-lead@people.example" in page.text
    for other in ("initech-lead@people.example", "none-lead@people.example", "Initech"):
        assert other not in page.text, other
    assert 'href="/console/jobs' not in page.text and 'id="l-source"' not in page.text
    assert '<a href="/console/leads"' in page.text and 'href="/console/sources"' not in page.text
    export = api_client.get("/console/leads/export")
    assert [r["email"] for r in csv.DictReader(io.StringIO(export.text))] == [
        "globex-lead@people.example"
    ]
    for path in ("/console", "/console/jobs", "/console/sources", "/console/schedules"):
        refused = api_client.get(path)
        assert refused.status_code == 403 and "limited to clients" in refused.text, path


def test_deleting_a_client_never_widens_a_viewers_sight(
    api_client: TestClient, agency: Agency
) -> None:
    h, v = agency.manager.headers, agency.viewer.headers
    campaign = f"{API}/campaigns/{agency.campaigns['globex']}"
    _ok(api_client.patch(campaign, json={"client_id": agency.initech}, headers=h))
    _ok(api_client.delete(f"{API}/clients/{agency.globex}", headers=h), 204)
    members = _ok(api_client.get(f"{API}/domains/{agency.manager.domain_id}/members", headers=h))
    (viewer,) = [m for m in members["items"] if m["user_id"] == str(agency.viewer.user_id)]
    assert viewer["client_ids"] == []  # limited to nothing, not unlimited
    assert _ok(api_client.get(f"{API}/campaigns", headers=v))["items"] == []
    assert _ok(api_client.get(f"{API}/leads", headers=v))["items"] == []
    assert _ok(api_client.get(f"{API}/analytics/overview", headers=v))["leads_total"] == 0


@pytest.mark.usefixtures("connectors_registry")
@pytest.mark.timeout(60)
def test_an_open_stream_ends_once_its_viewer_is_limited(
    api_client: TestClient, engine: Engine, agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "RECHECK_S", 0.2)
    monkeypatch.setattr(sse, "POLL_S", 3600.0)
    h = agency.manager.headers
    member_url = f"{API}/domains/{agency.manager.domain_id}/members/{agency.viewer.user_id}"
    _ok(api_client.patch(member_url, json={"client_ids": None}, headers=h))
    source = create_source(api_client, agency.manager)
    job = create_job(engine, agency.manager.domain_id, source["id"], moves=("start", "acquire"))
    url = f"{API}/jobs/{job}/logs/stream"
    with api_client.stream("GET", url, headers=agency.viewer.headers) as response:
        assert response.status_code == 200
        events = read_events(response)
        take_until(events, lambda e: e.id == "2")
        # When the viewer is limited to a client while the stream is open
        _ok(api_client.patch(member_url, json={"client_ids": [agency.globex]}, headers=h))
        # Then the idle re-check ends it, as it would refuse a new one
        tail = take_until(events, lambda e: e.event in ("revoked", "log"))
        assert tail[-1].event == "revoked"
    assert api_client.get(url, headers=agency.viewer.headers).status_code == 403
