"""Suppression list, erasure and data policy (issue 19), through the API and a real job run.

A suppressed person must never come back with an import: the sink rejects them (`suppressed`,
counted in `rejected`, never written), and an erased person leaves no trace in any table.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from api import job_moves
from models.job_logs import LogLine
from models.job_states import append_log as append
from runtime.settings import get_settings
from tests.api.conftest import ApiUser, MakeUser
from workers.runner import Runner

API = "/api/v1"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_moves, "enqueue_job", lambda job_id, queue: None)


def _upload(client: TestClient, user: ApiUser, source_id: str, body: str) -> str:
    response = client.post(
        f"{API}/data-sources/{source_id}/files",
        files={"file": ("people.csv", body.encode(), "text/csv")},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _import_csv(
    client: TestClient, engine: Engine, redis_url: str, user: ApiUser, body: str
) -> dict[str, Any]:
    """Upload `body` to a new CSV source, run the job in this thread, answer the job."""
    source = client.post(
        f"{API}/data-sources",
        json={"type": "csv", "name": f"CSV {uuid.uuid4().hex[:6]}", "config": {}},
        headers=user.headers,
    )
    assert source.status_code == 201, source.text
    file_id = _upload(client, user, source.json()["id"], body)
    job = client.post(
        f"{API}/jobs",
        json={
            "data_source_id": source.json()["id"],
            "params": {"file_id": file_id},
            "start": True,
        },
        headers=user.headers,
    )
    assert job.status_code == 201, job.text
    conn = redis.Redis.from_url(redis_url)
    try:
        outcome = Runner(engine, get_settings(), conn, threading.Event()).run(job.json()["id"])
    finally:
        conn.close()
    done: dict[str, Any] = client.get(f"{API}/jobs/{job.json()['id']}", headers=user.headers).json()
    assert outcome == "completed", done["error"]
    return done


def _emails(client: TestClient, user: ApiUser) -> list[str]:
    items = client.get(f"{API}/leads?limit=100", headers=user.headers).json()["items"]
    return sorted(i["email"] for i in items if i["email"])


def test_a_suppressed_email_in_a_csv_import_is_rejected_and_never_written(
    api_client: TestClient, make_user: MakeUser, engine: Engine, redis_url: str
) -> None:
    manager = make_user()
    # Given an opt-out, written as the person typed it
    added = api_client.post(
        f"{API}/suppressions", json={"emails": [" Jane.Doe@EXAMPLE.com "]}, headers=manager.headers
    )
    assert added.status_code == 201, added.text
    assert added.json()["added"] == 1
    # When a CSV with that person (twice) and another one is imported
    job = _import_csv(
        api_client,
        engine,
        redis_url,
        manager,
        "email,first_name\njane.doe@example.com,Jane\nbob@example.com,Bob\nJANE.DOE@example.com,J\n",
    )
    # Then both of Jane's rows are rejected as suppressed, Bob is the only lead
    counters = job["counters"]
    assert counters["fetched"] == 3
    assert counters["rejected"] == 2
    assert counters["inserted"] == 1
    assert sum(counters[k] for k in ("inserted", "updated", "unchanged", "rejected")) == 3
    errors = api_client.get(f"{API}/jobs/{job['id']}/errors", headers=manager.headers).json()
    assert [e["code"] for e in errors["items"]] == ["suppressed"]
    assert _emails(api_client, manager) == ["bob@example.com"]
    with Session(engine) as session:
        found = session.scalar(
            text("SELECT count(*) FROM leads WHERE lower(email) LIKE 'jane.doe%'")
        )
    assert found == 0


def test_domain_and_linkedin_entries_are_normalised_and_only_hashes_are_kept(
    api_client: TestClient, make_user: MakeUser, engine: Engine, redis_url: str
) -> None:
    manager = make_user()
    response = api_client.post(
        f"{API}/suppressions",
        json={
            "email_domains": ["Competitor.Example"],
            "linkedin_urls": ["http://linkedin.com/in/Jane-Doe/", "not a url"],
            "emails": ["nobody"],
        },
        headers=manager.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["added"], body["already"]) == (2, 0)
    assert sorted((i["field"], i["position"]) for i in body["invalid"]) == [
        ("emails", 0),
        ("linkedin_urls", 1),
    ]
    again = api_client.post(
        f"{API}/suppressions",
        json={"email_domains": ["competitor.example"]},
        headers=manager.headers,
    )
    assert (again.json()["added"], again.json()["already"]) == (0, 1)
    lookup = api_client.get(
        f"{API}/suppressions",
        params={"value": "Anyone@competitor.example"},
        headers=manager.headers,
    )
    assert [i["kind"] for i in lookup.json()["items"]] == ["email_domain"]
    with Session(engine) as session:
        stored = session.execute(text("SELECT key_hash FROM suppressions")).scalars().all()
    assert all(len(h) == 64 and "competitor" not in h for h in stored)
    job = _import_csv(
        api_client,
        engine,
        redis_url,
        manager,
        "email,linkedin url\nceo@competitor.example,\n,https://www.linkedin.com/in/jane-doe\n"
        "ok@fine.example,\n",
    )
    assert (job["counters"]["rejected"], job["counters"]["inserted"]) == (2, 1)
    assert _emails(api_client, manager) == ["ok@fine.example"]


def test_csv_import_of_a_suppression_list(api_client: TestClient, make_user: MakeUser) -> None:
    member = make_user(make_user().domain_name, role="member")
    csv_body = (
        "Email Address;LinkedIn URL;Notes\nA@x.example;;hi\nbroken;;\n;linkedin.com/in/abc;\n"
    )
    response = api_client.post(
        f"{API}/suppressions/import",
        files={"file": ("optouts.csv", csv_body.encode(), "text/csv")},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["added"] == 2
    assert [(i["field"], i["position"]) for i in response.json()["invalid"]] == [("emails", 3)]
    listed = api_client.get(f"{API}/suppressions", headers=member.headers).json()["items"]
    assert sorted(i["kind"] for i in listed) == ["email", "linkedin_url"]
    assert {i["origin"] for i in listed} == {"import"}
    no_column = api_client.post(
        f"{API}/suppressions/import",
        files={"file": ("x.csv", b"name\nBob\n", "text/csv")},
        headers=member.headers,
    )
    assert no_column.status_code == 422


def test_existing_leads_are_flagged_or_erased_as_the_domain_chooses(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    h = manager.headers
    for email in ("flag.me@a.example", "erase.me@b.example"):
        assert api_client.post(f"{API}/leads", json={"email": email}, headers=h).status_code == 201
    flagged = api_client.post(
        f"{API}/suppressions", json={"emails": ["flag.me@a.example"]}, headers=h
    )
    assert flagged.json()["leads_flagged"] == 1
    tagged = api_client.get(f"{API}/leads", params={"tag": "suppressed"}, headers=h).json()
    assert [i["email"] for i in tagged["items"]] == ["flag.me@a.example"]

    policy = api_client.patch(f"{API}/data-policy", json={"suppression_action": "erase"}, headers=h)
    assert policy.status_code == 200, policy.text
    assert policy.json()["suppression_action"] == "erase"
    assert policy.json()["retain_uploads_days"] == 30
    erased = api_client.post(
        f"{API}/suppressions", json={"email_domains": ["b.example"]}, headers=h
    )
    assert erased.json()["leads_erased"] == 1
    assert _emails(api_client, manager) == ["flag.me@a.example"]
    audit = api_client.get(f"{API}/erasures", headers=h).json()["items"]
    assert [(a["trigger"], a["leads"]) for a in audit] == [("suppression", 1)]


def test_only_managers_remove_entries_and_change_the_policy(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    member = make_user(manager.domain_name, role="member")
    api_client.post(f"{API}/suppressions", json={"emails": ["x@y.example"]}, headers=member.headers)
    (entry,) = api_client.get(f"{API}/suppressions", headers=member.headers).json()["items"]
    url = f"{API}/suppressions/{entry['id']}"
    assert api_client.delete(url, headers=member.headers).status_code == 403
    patch = {"retain_job_logs_days": 7}
    assert (
        api_client.patch(f"{API}/data-policy", json=patch, headers=member.headers).status_code
        == 403
    )
    assert (
        api_client.post(
            f"{API}/leads/erase", json={"email": "x@y.example"}, headers=member.headers
        ).status_code
        == 403
    )
    assert api_client.delete(url, headers=manager.headers).status_code == 204
    assert api_client.delete(url, headers=manager.headers).status_code == 404


def _tables_containing(engine: Engine, needle: str) -> list[str]:
    """Every (table.column) of the public schema, text or JSON, with a row containing `needle`."""
    hits = []
    with Session(engine) as session:
        columns = session.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN "
                "('text', 'character varying', 'json', 'jsonb', 'ARRAY', 'bytea')"
            )
        ).all()
        for table, column in columns:
            value = f'"{column}"::text'
            if column in ("body", "secret") or table == "upload_chunks":
                value = f"encode(\"{column}\", 'escape')"
            found = session.scalar(
                text(f'SELECT count(*) FROM "{table}" WHERE strpos(lower({value}), :n) > 0'),
                {"n": needle},
            )
            if found:
                hits.append(f"{table}.{column}")
    return hits


def test_erasure_leaves_no_row_in_any_table_containing_the_email(
    api_client: TestClient, make_user: MakeUser, engine: Engine, redis_url: str
) -> None:
    manager = make_user()
    h = manager.headers
    email = "erase.target@people.example"
    # Given the person reached the database every way it can: a CSV import (lead, keys,
    # provenance with the raw row), a hand-made lead replayed by an idempotency key, a row
    # error and a log line quoting them
    job = _import_csv(
        api_client,
        engine,
        redis_url,
        manager,
        f"email,first_name,linkedin url\n{email.upper()},Erin,linkedin.com/in/erin-target\n"
        "keep@people.example,Kim,\n",
    )
    created = api_client.post(
        f"{API}/leads",
        json={"email": email, "first_name": "Erin"},
        headers={**h, "Idempotency-Key": "erase-me-1"},
    )
    assert created.status_code == 200, created.text  # merged into the imported lead
    with Session(engine) as session, session.begin():
        job_id = uuid.UUID(job["id"])
        append(session, job_id, [LogLine("warning", "test.quote", f"row mentions {email}")])
        session.execute(
            text(
                "INSERT INTO job_record_errors (job_id, record, code, message, raw) "
                "VALUES (:j, 9, 'invalid', 'bad row', :raw)"
            ),
            {"j": job_id, "raw": f"{email},Erin,extra"},
        )
    assert _tables_containing(engine, email)  # the sweep does find it before

    # When the manager erases the person by email
    response = api_client.post(f"{API}/leads/erase", json={"email": email}, headers=h)

    # Then nothing anywhere contains the email (nor the LinkedIn URL), the other lead stays,
    # the audit record counts rows without naming anyone, and a re-import is suppressed
    assert response.status_code == 200, response.text
    audit = response.json()
    assert audit["leads"] == 1
    assert audit["tables"]["lead_keys"] == 2 and audit["tables"]["lead_sources"] >= 1
    assert audit["rows"] == sum(audit["tables"].values())
    assert _tables_containing(engine, email) == []
    assert _tables_containing(engine, "erin-target") == []
    assert _emails(api_client, manager) == ["keep@people.example"]
    listed = api_client.get(f"{API}/erasures", headers=h).json()["items"]
    assert listed[0]["erased_by"] == str(manager.user_id)
    assert "people.example" not in str(listed)
    again = _import_csv(api_client, engine, redis_url, manager, f"email\n{email}\n")
    assert again["counters"]["rejected"] == 1 and again["counters"]["inserted"] == 0


def test_erase_by_lead_id_and_unknown_ids(api_client: TestClient, make_user: MakeUser) -> None:
    manager = make_user()
    other = make_user()
    lead = api_client.post(
        f"{API}/leads", json={"linkedin_url": "linkedin.com/in/only-li"}, headers=manager.headers
    ).json()
    assert (
        api_client.post(
            f"{API}/leads/erase", json={"lead_id": lead["id"]}, headers=other.headers
        ).status_code
        == 404
    )
    both = {"lead_id": lead["id"], "email": "a@b.example"}
    assert (
        api_client.post(f"{API}/leads/erase", json=both, headers=manager.headers).status_code == 422
    )
    done = api_client.post(
        f"{API}/leads/erase", json={"lead_id": lead["id"]}, headers=manager.headers
    )
    assert done.status_code == 200 and done.json()["leads"] == 1
    assert api_client.get(f"{API}/leads/{lead['id']}", headers=manager.headers).status_code == 404
    recreated = api_client.post(
        f"{API}/leads",
        json={"linkedin_url": "https://www.linkedin.com/in/only-li"},
        headers=manager.headers,
    )
    assert recreated.status_code == 409
