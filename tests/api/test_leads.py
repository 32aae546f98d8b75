"""Leads: manual create and dedupe, provenance, filters, search, keyset pages, status flow,
qualification, score, assignment, bulk actions and the CSV export."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from models.leads_bulk import EXPORT_COLUMNS
from models.leads_sink import write_page
from models.scoring import STATUS_POINTS
from records import LeadRecord
from tests import factories
from tests.api.conftest import ApiUser, MakeUser

BASE = "/api/v1/leads"


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user(domain_name="acme.com")


def post_lead(client: TestClient, user: ApiUser, **body: Any) -> dict[str, Any]:
    response = client.post(BASE, json=body, headers=user.headers)
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()
    return data


def sink(
    db_url: str,
    domain_id: uuid.UUID,
    source_id: uuid.UUID,
    job_id: uuid.UUID,
    records: list[LeadRecord],
    campaign_id: uuid.UUID | None = None,
) -> None:
    with psycopg.connect(db_url) as conn:
        write_page(
            conn,
            domain_id=domain_id,
            data_source_id=source_id,
            job_id=job_id,
            provider="apollo",
            records=records,
            campaign_id=campaign_id,
        )


def test_manual_lead_has_the_wire_shape_and_dedupes_like_the_sink(
    api_client: TestClient, manager: ApiUser, engine: Engine, db_url: str
) -> None:
    # Given a scraped lead with provenance
    source = factories.make_source(engine, manager.domain_id, "apollo")
    job = factories.make_job(engine, manager.domain_id, source)
    sink(
        db_url,
        manager.domain_id,
        source,
        job,
        [LeadRecord(email="Jane.Doe@Example.com", title="CTO", external_id="ap-1")],
    )
    # When a user enters the same person by hand, differently spelled, with more fields
    response = api_client.post(
        BASE,
        json={
            "email": " jane.doe@example.COM",
            "title": "CEO",
            "phone": "+1 555",
            "company": {"name": "Example"},
            "location": {"city": "Oslo"},
            "tags": ["vip"],
        },
        headers=manager.headers,
    )
    # Then it merges (200): empty fields filled, none overwritten, provenance of both
    assert response.status_code == 200, response.text
    lead = response.json()
    assert (lead["email"], lead["title"], lead["phone"]) == (
        "jane.doe@example.com",
        "CTO",
        "+1 555",
    )
    assert lead["company"] == {"name": "Example", "domain": None, "industry": None, "size": None}
    assert lead["location"] == {"city": "Oslo", "state": None, "country": None}
    assert lead["tags"] == ["vip"] and lead["status"] == "new" and lead["assigned_to"] is None
    assert {(s["data_source_id"], s["job_id"], s["external_id"]) for s in lead["sources"]} == {
        (str(source), str(job), "ap-1"),
        (None, None, None),
    }
    got = api_client.get(f"{BASE}/{lead['id']}", headers=manager.headers).json()
    assert got["sources"] == lead["sources"] and got["domain_id"] == str(manager.domain_id)
    # And a brand-new person is a 201
    fresh = api_client.post(
        BASE, json={"linkedin_url": "linkedin.com/in/Bob"}, headers=manager.headers
    )
    assert fresh.status_code == 201
    assert fresh.json()["linkedin_url"] == "https://www.linkedin.com/in/bob"


def test_a_lead_without_identity_is_refused(api_client: TestClient, manager: ApiUser) -> None:
    response = api_client.post(BASE, json={"first_name": "Nobody"}, headers=manager.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "no_identity"


def test_status_flow_moves_and_refusals(api_client: TestClient, manager: ApiUser) -> None:
    lead = post_lead(api_client, manager, email="flow@x.example")
    url = f"{BASE}/{lead['id']}"
    for target in ("contacted", "responded", "qualified", "converted"):
        response = api_client.patch(url, json={"status": target}, headers=manager.headers)
        assert response.status_code == 200 and response.json()["status"] == target
    back = api_client.patch(url, json={"status": "new"}, headers=manager.headers)
    assert back.status_code == 409
    assert "converted lead cannot become new" in back.json()["detail"]
    other = post_lead(api_client, manager, email="flow2@x.example")
    skip = api_client.patch(
        f"{BASE}/{other['id']}", json={"status": "converted"}, headers=manager.headers
    )
    assert skip.status_code == 409 and "allowed next" in skip.json()["detail"]
    bad = api_client.patch(f"{BASE}/{other['id']}", json={"status": "won"}, headers=manager.headers)
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("score", "status"),
    [(5, "qualified"), (4, "qualified"), (3, "new"), (2, "rejected"), (1, "rejected")],
)
def test_qualify_moves_status_by_score(
    api_client: TestClient, manager: ApiUser, score: int, status: str
) -> None:
    lead = post_lead(api_client, manager, email=f"q{score}@x.example")
    response = api_client.post(
        f"{BASE}/{lead['id']}/qualify",
        json={"score": score, "criteria": {"budget": True}, "notes": "call went well"},
        headers=manager.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == status
    assert body["qualification"]["score"] == score
    assert body["qualification"]["criteria"] == {"budget": True}
    # 22 = new 5 + medium 5 + one field 2 + fresh 10; then the status part and 5 per step
    assert lead["score"] == 22
    assert body["score"] == 22 - STATUS_POINTS["new"] + STATUS_POINTS[status] + 5 * score


def test_qualify_validation_and_converted(api_client: TestClient, manager: ApiUser) -> None:
    lead = post_lead(api_client, manager, email="qv@x.example", status="new")
    url = f"{BASE}/{lead['id']}/qualify"
    assert api_client.post(url, json={"score": 6}, headers=manager.headers).status_code == 422
    assert api_client.post(url, json={"score": 0}, headers=manager.headers).status_code == 422
    api_client.post(url, json={"score": 5}, headers=manager.headers)
    api_client.patch(f"{BASE}/{lead['id']}", json={"status": "converted"}, headers=manager.headers)
    assert api_client.post(url, json={"score": 5}, headers=manager.headers).status_code == 409


def test_score_follows_its_inputs(api_client: TestClient, manager: ApiUser, engine: Engine) -> None:
    # new 5 + medium 5 + 1 field (email) 2 + fresh 10 = 22
    lead = post_lead(api_client, manager, email="s@x.example")
    assert lead["score"] == 22
    high = api_client.patch(
        f"{BASE}/{lead['id']}", json={"priority": "high", "title": "CTO"}, headers=manager.headers
    )
    assert high.json()["score"] == 22 + 5 + 2
    # an old lead loses its recency points once scores are refreshed
    with engine.begin() as conn:
        conn.execute(text("UPDATE leads SET created_at = now() - interval '100 days'"))
        from sqlalchemy.orm import Session

        from models.scoring import refresh_scores

        with Session(bind=conn) as session:
            assert refresh_scores(session, manager.domain_id) == 0  # the UPDATE above re-scored
    assert api_client.get(f"{BASE}/{lead['id']}", headers=manager.headers).json()["score"] == 19


def test_filters_search_sort_and_keyset_pages(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    campaign = api_client.post(
        "/api/v1/campaigns", json={"name": "C"}, headers=manager.headers
    ).json()
    made = [
        post_lead(
            api_client,
            manager,
            email=f"p{i}@x.example",
            first_name=f"Name{i}",
            company={"name": "Globex" if i % 3 == 0 else "Initech"},
            priority="high" if i % 2 else "low",
            tags=["t"] if i % 4 == 0 else [],
            campaign_id=campaign["id"] if i < 5 else None,
        )
        for i in range(12)
    ]
    with engine.begin() as conn:  # spread creation times
        for i, lead in enumerate(made):
            conn.execute(
                text("UPDATE leads SET created_at = :t WHERE id = :id"),
                {"t": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i), "id": lead["id"]},
            )

    def ids(**params: Any) -> list[str]:
        response = api_client.get(BASE, params=params, headers=manager.headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    by_index = [lead["id"] for lead in made]
    assert ids() == by_index[::-1]
    assert ids(priority="high") == [by_index[i] for i in range(11, -1, -1) if i % 2]
    assert ids(q="GLOBEX") == [by_index[i] for i in (9, 6, 3, 0)]
    assert ids(q="name1") == [by_index[i] for i in (11, 10, 1)]
    assert ids(q="%") == []  # LIKE wildcards are literal
    assert ids(tag="t") == [by_index[i] for i in (8, 4, 0)]
    assert ids(campaign_id=campaign["id"], sort="created_at") == by_index[:5]
    assert ids(created_from="2024-01-03T00:00:00Z", created_to="2024-01-05T00:00:00Z") == [
        by_index[3],
        by_index[2],
    ]
    # keyset pages by score, descending, walk every lead exactly once
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sort": "-score", "page_size": 5}
        if cursor:
            params["cursor"] = cursor
        body = api_client.get(BASE, params=params, headers=manager.headers).json()
        seen += [i["id"] for i in body["items"]]
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(by_index) and len(seen) == 12
    counted = api_client.get(
        BASE, params={"count": "true", "priority": "low"}, headers=manager.headers
    )
    assert counted.json()["total"] == 6


def test_data_source_filter(
    api_client: TestClient, manager: ApiUser, engine: Engine, db_url: str
) -> None:
    source = factories.make_source(engine, manager.domain_id, "apollo")
    job = factories.make_job(engine, manager.domain_id, source)
    sink(
        db_url,
        manager.domain_id,
        source,
        job,
        [LeadRecord(email="a@s.example"), LeadRecord(email="b@s.example")],
    )
    post_lead(api_client, manager, email="c@s.example")
    listed = api_client.get(
        BASE, params={"data_source_id": str(source)}, headers=manager.headers
    ).json()
    assert sorted(i["email"] for i in listed["items"]) == ["a@s.example", "b@s.example"]


def test_soft_delete_hides_and_manual_re_add_restores(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    lead = post_lead(api_client, manager, email="gone@x.example")
    assert api_client.delete(f"{BASE}/{lead['id']}", headers=manager.headers).status_code == 204
    assert api_client.get(f"{BASE}/{lead['id']}", headers=manager.headers).status_code == 404
    assert api_client.get(BASE, headers=manager.headers).json()["items"] == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT deleted_at IS NOT NULL FROM leads")).scalar_one()
    again = api_client.post(BASE, json={"email": "gone@x.example"}, headers=manager.headers)
    assert again.status_code == 200 and again.json()["id"] == lead["id"]


def test_assign_notifies_the_assignee(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser
) -> None:
    member = make_user(domain_name=manager.domain_name, role="member")
    viewer = make_user(domain_name=manager.domain_name, role="viewer")
    outsider = make_user(domain_name="other.example")
    lead = post_lead(api_client, manager, email="as@x.example")
    url = f"{BASE}/{lead['id']}/assign"
    response = api_client.post(url, json={"email": member.email.upper()}, headers=manager.headers)
    assert response.status_code == 200 and response.json()["assigned_to"] == str(member.user_id)
    notes = api_client.get("/api/v1/notifications", headers=member.headers).json()["items"]
    assert [n["kind"] for n in notes] == ["lead.assigned"]
    assert notes[0]["payload"]["lead_ids"] == [lead["id"]]
    for body in ({"user_id": str(viewer.user_id)}, {"user_id": str(outsider.user_id)}, {}):
        assert api_client.post(url, json=body, headers=manager.headers).status_code == 422
    # the member now sees the lead but may not assign
    assert api_client.get(f"{BASE}/{lead['id']}", headers=member.headers).status_code == 200
    assert (
        api_client.post(
            url, json={"user_id": str(member.user_id)}, headers=member.headers
        ).status_code
        == 403
    )


def test_bulk_update_assign_delete_with_per_id_results(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser
) -> None:
    member = make_user(domain_name=manager.domain_name, role="member")
    leads = [post_lead(api_client, manager, email=f"b{i}@x.example") for i in range(4)]
    api_client.patch(
        f"{BASE}/{leads[0]['id']}", json={"status": "rejected"}, headers=manager.headers
    )
    missing = str(uuid.uuid4())
    ids = [lead["id"] for lead in leads] + [missing]
    response = api_client.post(
        f"{BASE}/bulk",
        json={
            "action": "update",
            "ids": ids,
            "update": {"status": "contacted", "priority": "high"},
        },
        headers=manager.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    by_id = {r["id"]: r for r in body["results"]}
    assert (body["succeeded"], body["failed"]) == (3, 2)
    assert by_id[missing]["code"] == "not_found"
    assert (
        by_id[leads[0]["id"]]["ok"] is False and "rejected lead" in by_id[leads[0]["id"]]["message"]
    )
    statuses = {
        i["id"]: (i["status"], i["priority"])
        for i in api_client.get(BASE, headers=manager.headers).json()["items"]
    }
    assert statuses[leads[0]["id"]] == ("rejected", "medium")
    assert statuses[leads[1]["id"]] == ("contacted", "high")
    # assign by filter
    assigned = api_client.post(
        f"{BASE}/bulk",
        json={
            "action": "assign",
            "filter": {"status": "contacted"},
            "assign": {"user_id": str(member.user_id)},
        },
        headers=manager.headers,
    )
    assert assigned.json()["succeeded"] == 3
    assert len(api_client.get(BASE, headers=member.headers).json()["items"]) == 3
    deleted = api_client.post(
        f"{BASE}/bulk", json={"action": "delete", "ids": ids[:2]}, headers=manager.headers
    )
    assert deleted.json()["succeeded"] == 2
    assert len(api_client.get(BASE, headers=manager.headers).json()["items"]) == 2
    too_many = api_client.post(
        f"{BASE}/bulk",
        json={"action": "delete", "ids": [str(uuid.uuid4()) for _ in range(1001)]},
        headers=manager.headers,
    )
    assert too_many.status_code == 422
    both = api_client.post(
        f"{BASE}/bulk", json={"action": "delete", "ids": ids, "filter": {}}, headers=manager.headers
    )
    assert both.status_code == 422


def test_export_streams_filtered_csv_with_formulas_neutralised(
    api_client: TestClient, manager: ApiUser
) -> None:
    post_lead(
        api_client,
        manager,
        email="x1@x.example",
        first_name='=HYPERLINK("http://evil")',
        last_name="+cmd",
        title="@SUM(A1)",
        company={"name": "-2+3"},
        priority="high",
    )
    post_lead(
        api_client,
        manager,
        email="x2@x.example",
        first_name="\tTab",
        last_name="\rCR",
        priority="high",
    )
    post_lead(api_client, manager, email="x3@x.example", first_name="Plain", priority="low")
    response = api_client.get(
        f"{BASE}/export", params={"format": "csv", "priority": "high"}, headers=manager.headers
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["email"] for r in rows) == ["x1@x.example", "x2@x.example"]
    first = next(r for r in rows if r["email"] == "x1@x.example")
    assert first["first_name"] == '\'=HYPERLINK("http://evil")'
    assert (first["last_name"], first["title"], first["company_name"]) == (
        "'+cmd",
        "'@SUM(A1)",
        "'-2+3",
    )
    second = next(r for r in rows if r["email"] == "x2@x.example")
    assert second["first_name"].startswith("'") and second["last_name"].startswith("'")
    assert (
        api_client.get(
            f"{BASE}/export", params={"format": "xlsx"}, headers=manager.headers
        ).status_code
        == 422
    )


def test_export_is_many_chunks_for_many_rows(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO leads (domain_id, email) "
                "SELECT :d, 'e' || g || '@x.example' FROM generate_series(1, 2500) g"
            ),
            {"d": manager.domain_id},
        )
    with api_client.stream("GET", f"{BASE}/export", headers=manager.headers) as response:
        chunks = list(response.iter_text())
    body = "".join(chunks)
    assert body.count("\n") == 2501


def test_both_export_formats_list_the_leads_oldest_first_in_the_same_order(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    # Given leads inserted in an order unlike their creation times (some sharing one)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO leads (domain_id, email, created_at) "
                "SELECT :d, 'o' || g || '@x.example', "
                "       timestamptz '2026-01-01' + make_interval(mins => (g * 7919) % 1000) "
                "FROM generate_series(1, 1500) g"
            ),
            {"d": manager.domain_id},
        )
    csv_rows = list(
        csv.DictReader(io.StringIO(api_client.get(f"{BASE}/export", headers=manager.headers).text))
    )
    response = api_client.get(f"{BASE}/export", params={"format": "jsonl"}, headers=manager.headers)
    json_rows = [json.loads(line) for line in response.text.splitlines()]
    # Then JSON lines come in the CSV's order, which is (created_at, id)
    assert [r["id"] for r in json_rows] == [r["id"] for r in csv_rows]
    keys = [(datetime.fromisoformat(r["created_at"]), uuid.UUID(r["id"])) for r in json_rows]
    assert len(keys) == 1500 and keys == sorted(keys)


def test_a_leads_sources_show_each_providers_record_as_received(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, engine: Engine, db_url: str
) -> None:
    source = factories.make_source(engine, manager.domain_id, "apollo")
    first, second = (factories.make_job(engine, manager.domain_id, source) for _ in range(2))
    raw = {"id": "p-1", "email": "r@s.example", "organization": {"name": "Acme", "size": 40}}
    sink(db_url, manager.domain_id, source, first, [LeadRecord(email="r@s.example", raw=raw)])
    again = {**raw, "title": "CFO"}
    sink(db_url, manager.domain_id, source, second, [LeadRecord(email="r@s.example", raw=again)])
    lead_id = api_client.get(BASE, params={"q": "r@s.example"}, headers=manager.headers).json()[
        "items"
    ][0]["id"]
    response = api_client.get(f"{BASE}/{lead_id}/sources", headers=manager.headers)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [(r["job_id"], r["data_source_id"], r["raw"]) for r in rows] == [
        (str(first), str(source), raw),
        (str(second), str(source), again),
    ]
    assert all(r["created_at"] for r in rows)
    # A manual lead's one provenance row has no source and no record; another domain cannot
    # read any of it
    manual = post_lead(api_client, manager, email="m@s.example")
    mine = api_client.get(f"{BASE}/{manual['id']}/sources", headers=manager.headers).json()
    assert [(r["data_source_id"], r["raw"]) for r in mine] == [(None, None)]
    stranger = make_user(domain_name="other.example")
    foreign = api_client.get(f"{BASE}/{lead_id}/sources", headers=stranger.headers)
    assert foreign.status_code == 404


def test_export_as_json_lines_keeps_every_value_exactly(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    tricky = 'Quote " back\\slash, comma; tab\tnew\nline é ✓'
    made = post_lead(
        api_client,
        manager,
        email="j1@x.example",
        first_name=tricky,
        last_name="=1+1",
        tags=["vip", "a;b"],
        priority="high",
    )
    post_lead(api_client, manager, email="j2@x.example", priority="low")
    response = api_client.get(
        f"{BASE}/export", params={"format": "jsonl", "priority": "high"}, headers=manager.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.text.splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert list(row) == list(EXPORT_COLUMNS)  # every key, in the CSV header's order
    assert row["id"] == made["id"] and row["email"] == "j1@x.example"
    # JSON lines are not for spreadsheets: values are the stored ones, no `'` prefix
    assert row["first_name"] == tricky and row["last_name"] == "=1+1"
    assert row["tags"] == ["vip", "a;b"] and row["score"] == made["score"]
    assert datetime.fromisoformat(row["created_at"]) == datetime.fromisoformat(made["created_at"])
    # the CSV export of the same lead: same cells, formula neutralised, tags joined
    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                api_client.get(
                    f"{BASE}/export", params={"priority": "high"}, headers=manager.headers
                ).text
            )
        )
    )
    assert [r["id"] for r in csv_rows] == [made["id"]]
    assert csv_rows[0]["first_name"] == tricky and csv_rows[0]["last_name"] == "'=1+1"
    assert csv_rows[0]["tags"] == "vip;a;b" and csv_rows[0]["state"] == ""
    assert datetime.fromisoformat(csv_rows[0]["created_at"]) == datetime.fromisoformat(
        made["created_at"]
    )


def test_an_export_is_bounded_by_its_own_timeout_not_the_statement_timeout(
    manager: ApiUser, engine: Engine
) -> None:
    """The export is one COPY statement: the API connections' statement_timeout (15 s) would
    cut a big export off mid-stream; the export sets its own bound for its transaction."""
    from models.leads_bulk import export_copy
    from models.leads_repo import LeadFilter, LeadScope

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO leads (domain_id, email) "
                "SELECT :d, 'e' || g || '@x.example' FROM generate_series(1, 20000) g"
            ),
            {"d": manager.domain_id},
        )
    scope = LeadScope(manager.domain_id, manager.user_id)
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SET LOCAL statement_timeout = 1"))  # 1 ms: far too short for 20k
        body = b"".join(export_copy(conn, scope, LeadFilter(), "jsonl", timeout_s=120))
    assert body.count(b"\n") == 20000
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SET LOCAL statement_timeout = 1"))
        with pytest.raises(Exception, match="statement timeout"):
            b"".join(export_copy(conn, scope, LeadFilter(), "jsonl"))
