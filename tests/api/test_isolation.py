"""Tenant isolation: every route of the OpenAPI document, called by domain B with domain A's ids.

Given two domains with data of every kind, when a manager or a member of B calls each operation
with A's ids in the path, the query and the body (acting in B, and claiming to act in A), then
nothing of A leaks: routes naming an A object answer 403 or 404, list routes show only B's rows,
no response carries an A marker (a secret, a name, a file name, a log line, an e-mail), and A's
data is exactly as it was. A route added later without an entry in `PATH_IDS` fails this test,
so nobody can add an endpoint the sweep does not cover.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from api import job_moves, live
from models.job_logs import LogLine
from models.job_states import append_log as append
from models.jobs import JobRecordError
from models.webhooks import WebhookDelivery, WebhookMessage
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    SECRET,
    connectors_registry,  # noqa: F401  (fixture)
    create_job,
    create_source,
    move_job,
)
from tests.api.sse_client import read_events, take_until

pytestmark = pytest.mark.usefixtures("connectors_registry")

API = "/api/v1"
STREAMS = {("GET", f"{API}/events")}  # endless: checked on its own below
#: public by design: a UTM short link redirects anyone who has it (no credentials at all)
PUBLIC = {("GET", "/r/{code}")}
#: answered by a single-use token alone, whoever asks (an invitation link): tests/api/test_mail.py
TOKEN_ONLY = {("GET", f"{API}/auth/invitation")}
#: collections only managers read (webhook URLs often carry credentials): 403 for a member
MANAGER_READS = {
    ("GET", f"{API}/webhooks"),
    ("GET", f"{API}/erasures"),
    ("GET", f"{API}/audit"),
}


@dataclass
class DomainA:
    manager: ApiUser
    member: ApiUser
    ids: dict[str, str] = field(default_factory=dict)
    code: str = ""
    markers: list[str] = field(default_factory=list)

    def all_ids(self) -> set[str]:
        return set(self.ids.values())


@pytest.fixture
def domain_a(
    api_client: TestClient, make_user: MakeUser, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> DomainA:
    monkeypatch.setattr(job_moves, "enqueue_job", lambda job_id, queue: None)
    manager = make_user()
    member = make_user(manager.domain_name, role="member")
    a = DomainA(manager, member)
    h = manager.headers

    client = api_client.post(
        f"{API}/clients",
        json={"name": "Alpha Client Globex", "contact": "alpha-contact", "notes": "alpha-notes"},
        headers=h,
    )
    assert client.status_code == 201, client.text
    campaign = api_client.post(
        f"{API}/campaigns",
        json={"name": "Alpha Secret Campaign", "client_id": client.json()["id"]},
        headers=h,
    )
    assert campaign.status_code == 201, campaign.text
    source = create_source(api_client, manager, name="Alpha Source")
    csv_source = create_source(api_client, manager, type_="csv", name="Alpha CSV")
    boundary = uuid.uuid4().hex
    upload_body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="alpha-leads.csv"\r\n\r\nemail\nalpha-lead@alpha.example\n'
        f"\r\n--{boundary}--\r\n"
    ).encode()
    upload = api_client.post(
        f"{API}/data-sources/{csv_source['id']}/files",
        content=upload_body,
        headers={**h, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert upload.status_code == 201, upload.text
    job = api_client.post(
        f"{API}/jobs",
        json={
            "data_source_id": source["id"],
            "campaign_id": campaign.json()["id"],
            "params": {"limit": 9},
            "start": True,
        },
        headers=h,
    )
    assert job.status_code == 201, job.text
    job_id = uuid.UUID(job.json()["id"])
    with Session(engine) as session, session.begin():
        append(session, job_id, [LogLine("info", "alpha.event", "alpha log line")])
        session.execute(
            insert(JobRecordError).values(
                job_id=job_id, record=1, code="no_identity", message="m", raw="alpha-raw-row"
            )
        )
    # A finished job leaves a notification for A's manager.
    done = create_job(engine, manager.domain_id, source["id"], moves=("start", "cancel"))
    notes = api_client.get(f"{API}/notifications", headers=h).json()["items"]
    schedule = api_client.post(
        f"{API}/schedules",
        json={"data_source_id": source["id"], "cron": "0 7 * * *", "name": "Alpha Schedule"},
        headers=h,
    )
    assert schedule.status_code == 201, schedule.text
    key = api_client.post(f"{API}/api-keys", json={"name": "Alpha Key"}, headers=h)
    assert key.status_code == 201, key.text
    lead = api_client.post(
        f"{API}/leads",
        json={
            "email": "alphonse@alpha-people.example",
            "first_name": "Alphonse",
            "campaign_id": campaign.json()["id"],
        },
        headers=h,
    )
    assert lead.status_code == 201, lead.text
    link = api_client.post(
        f"{API}/campaigns/{campaign.json()['id']}/links",
        json={
            "destination_url": "https://alpha.example/landing-secret",
            "utm_source": "alphasrc",
            "utm_medium": "email",
        },
        headers=h,
    )
    assert link.status_code == 201, link.text

    hook = api_client.post(
        f"{API}/webhooks",
        json={"url": "http://127.0.0.1:9/alpha-hook-path", "events": ["job.failed"]},
        headers=h,
    )
    assert hook.status_code == 201, hook.text
    assert api_client.post(f"{API}/webhooks/{hook.json()['id']}/test", headers=h).status_code == 202
    with Session(engine) as session, session.begin():
        message_id = session.scalars(select(WebhookMessage.id)).one()
        delivery_id = session.execute(
            insert(WebhookDelivery)
            .values(
                domain_id=manager.domain_id,
                webhook_id=hook.json()["id"],
                message_id=message_id,
                attempt=1,
                succeeded=False,
                status_code=503,
                latency_ms=5,
                error="HTTP 503: alpha-hook-error",
            )
            .returning(WebhookDelivery.id)
        ).scalar_one()

    suppressed = api_client.post(
        f"{API}/suppressions", json={"emails": ["alpha-optout@alpha.example"]}, headers=h
    )
    assert suppressed.status_code == 201, suppressed.text
    (suppression,) = api_client.get(f"{API}/suppressions", headers=h).json()["items"]
    erased = api_client.post(
        f"{API}/leads/erase", json={"email": "alpha-erased@alpha.example"}, headers=h
    )
    assert erased.status_code == 200, erased.text

    signed_in = api_client.post(
        f"{API}/auth/login", json={"email": manager.email, "password": manager.password}
    )
    assert signed_in.status_code == 200, signed_in.text
    sessions = api_client.get(f"{API}/me/sessions", headers=manager.auth)
    assert sessions.status_code == 200, sessions.text
    (sign_in,) = sessions.json()["items"]

    a.code = link.json()["short_code"]
    a.ids = {
        "campaign": campaign.json()["id"],
        "client": client.json()["id"],
        "source": source["id"],
        "csv_source": csv_source["id"],
        "upload": upload.json()["id"],
        "job": str(job_id),
        "done_job": str(done),
        "notification": notes[0]["id"],
        "schedule": schedule.json()["id"],
        "api_key": key.json()["id"],
        "lead": lead.json()["id"],
        "link": link.json()["id"],
        "webhook": hook.json()["id"],
        "delivery": str(delivery_id),
        "suppression": suppression["id"],
        "sign_in_session": sign_in["id"],
        "erasure": erased.json()["id"],
        "domain": str(manager.domain_id),
        "manager": str(manager.user_id),
        "member": str(member.user_id),
    }
    a.markers = [
        SECRET,
        key.json()["key"],
        "Alpha Source",
        "Alpha CSV",
        "Alpha Secret Campaign",
        "Alpha Client Globex",
        "alpha-contact",
        "alpha-notes",
        "Alpha Schedule",
        "Alpha Key",
        "alpha-leads.csv",
        "alpha-lead@alpha.example",
        "alpha log line",
        "alpha-raw-row",
        "alphonse@alpha-people.example",
        "Alphonse",
        "landing-secret",
        link.json()["short_code"],
        "alpha-hook-path",
        "alpha-hook-error",
        hook.json()["secret"],
        manager.domain_name,
        manager.email,
        member.email,
    ]
    return a


def _path_ids(a: DomainA) -> dict[str, str]:
    """Which of A's objects each path parameter names."""
    return {
        "source_id": a.ids["csv_source"],
        "job_id": a.ids["job"],
        "schedule_id": a.ids["schedule"],
        "notification_id": a.ids["notification"],
        "campaign_id": a.ids["campaign"],
        "client_id": a.ids["client"],
        "domain_id": a.ids["domain"],
        "user_id": a.ids["member"],
        "key_id": a.ids["api_key"],
        "lead_id": a.ids["lead"],
        "link_id": a.ids["link"],
        "code": a.code,
        "webhook_id": a.ids["webhook"],
        "delivery_id": a.ids["delivery"],
        "suppression_id": a.ids["suppression"],
        "session_id": a.ids["sign_in_session"],
    }


def _query_ids(a: DomainA) -> dict[str, str]:
    return {
        "data_source_id": a.ids["source"],
        "campaign_id": a.ids["campaign"],
        "client_id": a.ids["client"],
        "schedule_id": a.ids["schedule"],
        "job_id": a.ids["job"],
    }


def _probe_body(a: DomainA) -> dict[str, Any]:
    """One body for every write: A's ids wherever a field could refer to an object."""
    return {
        "name": "probe",
        "type": "vault",
        "config": {"api_key": "probe", "file_id": a.ids["upload"]},
        "data_source_id": a.ids["source"],
        "campaign_id": a.ids["campaign"],
        "client_id": a.ids["client"],
        "client_ids": [a.ids["client"]],
        "params": {"file_id": a.ids["upload"]},
        "start": True,
        "interval_seconds": 60,
        "enabled": False,
        "role": "manager",
        "email": a.member.email,
        "domain_id": a.ids["domain"],
        "status": "paused",
        "action": "delete",
        "ids": [a.ids["lead"]],
        "destination_url": "https://probe.example",
        "utm_source": "probe",
        "utm_medium": "probe",
    }


def _operations(app_openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in app_openapi["paths"].items():
        for method, spec in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), path, spec))
    return ops


def _assert_no_leak(response: Any, a: DomainA, echoed: set[str], where: str) -> None:
    text = response.text
    for marker in a.markers:
        assert marker not in text, f"{where}: leaked {marker!r}"
    for leaked in a.all_ids() - echoed:
        assert leaked not in text, f"{where}: leaked an id of domain A ({leaked})"


@pytest.mark.parametrize("role", ["member", "manager"])
def test_domain_b_sees_nothing_of_domain_a(
    api_client: TestClient, make_user: MakeUser, engine: Engine, domain_a: DomainA, role: str
) -> None:
    a = domain_a
    b = make_user(role=role)
    b_manager = b if role == "manager" else make_user(b.domain_name)
    # B has data of its own, so empty lists prove nothing: B's lists must show B's rows only.
    b_source = create_source(api_client, b_manager, name="Beta Source")
    create_job(engine, b.domain_id, b_source["id"], moves=("start",))
    before = _a_snapshot(api_client, a)

    operations = _operations(api_client.app.openapi())  # type: ignore[attr-defined]
    covered: set[tuple[str, str]] = set()
    path_ids, query_ids = _path_ids(a), _query_ids(a)
    for headers_name, headers in (
        ("acting in B", b.headers),
        ("claiming A", {**b.auth, "Dashin-Domain": a.ids["domain"]}),
    ):
        for method, path, spec in operations:
            if (method, path) in STREAMS | TOKEN_ONLY:
                covered.add((method, path))
                continue
            if (method, path) in PUBLIC:
                _check_public_redirect(api_client, a, headers)
                covered.add((method, path))
                continue
            names = re.findall(r"{(\w+)}", path)
            unknown = [n for n in names if n not in path_ids]
            assert not unknown, f"{method} {path}: add {unknown} to _path_ids"
            url = path
            for name in names:
                url = url.replace(f"{{{name}}}", path_ids[name])
            query = {
                p["name"]: query_ids[p["name"]]
                for p in spec.get("parameters", [])
                if p.get("in") == "query" and p["name"] in query_ids
            }
            body = _probe_body(a) if method in ("POST", "PUT", "PATCH") else None
            where = f"{method} {url} ({role}, {headers_name})"
            # A 404 may repeat the ids the caller sent (path, Dashin-Domain), nothing else.
            echoed = {path_ids[n] for n in names} | {headers["Dashin-Domain"]}
            for params in ({}, query) if query else ({},):
                response = api_client.request(
                    method, url, params=params, json=body, headers=headers
                )
                if names:
                    _assert_no_leak(response, a, echoed, where)
                    if response.status_code == 422:
                        # The probe body did not fit this route: refused before any lookup, so
                        # the answer must be the same for an id that exists nowhere.
                        url_nowhere = path
                        for name in names:
                            url_nowhere = url_nowhere.replace(f"{{{name}}}", str(uuid.uuid4()))
                        nowhere = api_client.request(
                            method, url_nowhere, params=params, json=body, headers=headers
                        )
                        assert nowhere.status_code == 422, where
                        assert nowhere.json()["errors"] == response.json()["errors"], where
                    else:
                        assert response.status_code in (403, 404), (
                            f"{where}: {response.status_code}"
                        )
                elif method == "GET" and headers_name == "acting in B" and not params:
                    # Reads of B's own collections work (so the sweep is not just 401s) ...
                    expected = 403 if (method, path) in MANAGER_READS and role != "manager" else 200
                    assert response.status_code == expected, f"{where}: {response.status_code}"
                    _assert_no_leak(response, a, set(), where)  # ... and show no row of A
                elif response.is_success:
                    # Writes without a path may succeed in B's own domain, but never refer to A
                    # (a bulk call may only report the ids it was given as not found).
                    _assert_no_leak(response, a, set(body["ids"]) if body else set(), where)
                else:
                    assert response.status_code in (401, 403, 404, 409, 422, 429), where
                    sent = echoed | set(params.values()) | _body_ids(body)
                    _assert_no_leak(response, a, sent, where)
            covered.add((method, path))

    assert covered == {(m, p) for m, p, _ in operations}
    listed = api_client.get(f"{API}/data-sources", headers=b.headers).json()["items"]
    assert [s["id"] for s in listed] == [b_source["id"]]
    assert _a_snapshot(api_client, a) == before  # nothing of A changed either
    _check_events_stream(api_client, engine, a, b, b_manager, b_source["id"])


def _body_ids(body: dict[str, Any] | None) -> set[str]:
    return set(re.findall(r"[0-9a-f-]{36}", repr(body))) if body else set()


def _a_snapshot(api_client: TestClient, a: DomainA) -> dict[str, Any]:
    """What A's manager sees of A's objects (to prove B's calls changed nothing)."""
    h = a.manager.headers

    def get(path: str) -> Any:
        response = api_client.get(f"{API}{path}", headers=h)
        assert response.status_code == 200, response.text
        return response.json()

    job = get(f"/jobs/{a.ids['job']}")
    job.pop("heartbeat_age_s")
    link = get(f"/links/{a.ids['link']}")
    for counted in ("clicks", "updated_at"):  # the public redirect counts B's visit, as anyone's
        link.pop(counted)
    return {
        "source": get(f"/data-sources/{a.ids['source']}"),
        "csv_source": get(f"/data-sources/{a.ids['csv_source']}"),
        "job": job,
        "jobs": sorted(j["id"] for j in get("/jobs")["items"]),
        "logs": get(f"/jobs/{a.ids['job']}/logs"),
        "errors": get(f"/jobs/{a.ids['job']}/errors"),
        "schedule": get(f"/schedules/{a.ids['schedule']}"),
        "campaign": get(f"/campaigns/{a.ids['campaign']}"),
        "client": get(f"/clients/{a.ids['client']}"),
        "notifications": get("/notifications"),
        "members": get(f"/domains/{a.ids['domain']}/members"),
        "keys": sorted(k["id"] for k in get("/api-keys")["items"]),
        "lead": get(f"/leads/{a.ids['lead']}"),
        "link": link,
        "suppressions": get("/suppressions"),
        "erasures": get("/erasures"),
        "data_policy": get("/data-policy"),
        "audit": get("/audit"),
        "sign_in_sessions": sorted(s["id"] for s in get("/me/sessions")["items"]),
    }


def _a_changes(api_client: TestClient, engine: Engine, a: DomainA) -> None:
    """A job move and lead, campaign and data source changes in A (each one a live event)."""
    move_job(engine, uuid.UUID(a.ids["job"]), "pause")
    move_job(engine, uuid.UUID(a.ids["job"]), "resume")
    h = a.manager.headers
    for path, body in (
        (f"/campaigns/{a.ids['campaign']}", {"objective": "moved"}),
        (f"/leads/{a.ids['lead']}", {"priority": "low"}),
        (f"/data-sources/{a.ids['source']}", {"name": "Alpha Source 2"}),
    ):
        assert api_client.patch(f"{API}{path}", json=body, headers=h).status_code == 200, path


def _check_events_stream(
    api_client: TestClient,
    engine: Engine,
    a: DomainA,
    b: ApiUser,
    b_manager: ApiUser,
    b_source_id: str,
) -> None:
    """B's live feed (SSE and WebSocket) carries B's changes and nothing of A's, even when A
    changes first; naming A's domain is a 404 on both."""
    claiming_a = {**b.auth, "Dashin-Domain": a.ids["domain"]}
    assert api_client.get(f"{API}/events", headers=claiming_a).status_code == 404
    with api_client.websocket_connect(f"{API}/ws?domain={a.ids['domain']}") as ws:
        ws.send_json({"op": "auth", "token": b.token})
        assert ws.receive_json()["code"] == "not_found"
    with (
        api_client.stream("GET", f"{API}/events", headers=b.headers) as response,
        api_client.websocket_connect(f"{API}/ws", headers=b.headers) as ws,
    ):
        events = read_events(response)
        take_until(events, lambda e: e.event == "ready")
        assert ws.receive_json()["type"] == "ready"
        ws.send_json({"op": "subscribe", "channels": list(live.CHANNELS)})
        assert ws.receive_json()["type"] == "subscribed"
        _a_changes(api_client, engine, a)
        b_job = create_job(engine, b.domain_id, b_source_id, moves=("start",))
        renamed = api_client.patch(
            f"{API}/data-sources/{b_source_id}", json={"name": "Beta"}, headers=b_manager.headers
        )
        assert renamed.status_code == 200
        # (a job's status is relayed as it is notified, a data source change from the event
        # log: the two may arrive in either order)
        wanted = ("job_status", "data_source.updated")
        seen = take_until(events, lambda e: e.event in wanted)
        seen += take_until(events, lambda e: e.event in wanted and e.event != seen[-1].event)
        socket_seen = [ws.receive_json(), ws.receive_json()]
    for data in [e.data for e in seen] + [json.dumps(m) for m in socket_seen]:
        for leaked in a.all_ids():
            assert leaked not in data, f"the live feed leaked {leaked}"
    by_kind = {e.event: e.data for e in seen}
    assert [e.event for e in seen if e.event in wanted] == [e.event for e in seen]
    assert sorted(by_kind) == sorted(wanted)
    assert str(b_job) in by_kind["job_status"] and b_source_id in by_kind["data_source.updated"]
    assert sorted(m["event"] for m in socket_seen) == sorted(wanted)


def _check_public_redirect(api_client: TestClient, a: DomainA, headers: dict[str, str]) -> None:
    """`/r/{code}` is public: anyone with the code is redirected, and learns nothing else."""
    response = api_client.get(f"/r/{a.code}", headers=headers, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://alpha.example/landing-secret")
    for marker in a.markers:
        assert marker not in response.text
    unknown = api_client.get(f"/r/nope{a.code}", headers=headers, follow_redirects=False)
    assert unknown.status_code == 404
