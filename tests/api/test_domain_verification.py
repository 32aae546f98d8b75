"""Domain ownership (issue 14, M2): a founded or renamed domain is unverified until its manager
publishes a DNS TXT record, and an unverified domain may not use paid providers.

The probe's finding: anyone could found `bigcorp.com` first and lock the real company out.
DNS is replaced by `domain_proof.lookup_txt`'s seam: a dict of published records.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import domain_proof
from api.mailer import RecordingMailer
from runtime.settings import reset_settings_cache
from tests.api.conftest import MakeUser

PUBLISHED: dict[str, list[str]] = {}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    PUBLISHED.clear()
    monkeypatch.setattr(domain_proof, "lookup_txt", lambda name: PUBLISHED.get(name, []))
    return PUBLISHED


def _found(client: TestClient, name: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "email": f"ada@{name}",
            "password": "correct horse battery staple",
            "domain_name": name,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return {"Authorization": f"Bearer {body['access_token']}", "domain_id": body["domain_id"]}


def _apollo(client: TestClient, auth: dict[str, Any]) -> int:
    body = {"type": "apollo", "name": "Apollo", "config": {"api_key": "k-123"}}
    headers = {"Authorization": auth["Authorization"]}
    status: int = client.post("/api/v1/data-sources", json=body, headers=headers).status_code
    return status


def test_a_founded_domain_is_limited_until_its_txt_record_proves_it(
    api_client: TestClient,
) -> None:
    auth = _found(api_client, "bigcorp-squat.example")
    headers = {"Authorization": auth["Authorization"]}
    url = f"/api/v1/domains/{auth['domain_id']}"
    # Given a freshly founded domain: unverified, no paid providers
    assert api_client.get(url, headers=headers).json()["verified_at"] is None
    assert _apollo(api_client, auth) == 403
    proof = api_client.get(f"{url}/verification", headers=headers).json()
    assert proof["status"] == "unverified" and proof["record_type"] == "TXT"
    assert proof["record_name"] == "_dashin-verify.bigcorp-squat.example"
    assert proof["record_value"].startswith("dashin-verify=")
    # When the check runs before the record is published (or with another value), it is refused
    PUBLISHED[proof["record_name"]] = ["dashin-verify=someone-elses-token"]
    assert api_client.post(f"{url}/verification", headers=headers).status_code == 409
    # When the record is published, the check verifies the domain and paid providers open up
    PUBLISHED[proof["record_name"]] = ["v=spf1 -all", proof["record_value"]]
    verified = api_client.post(f"{url}/verification", headers=headers)
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    assert verified.json()["record_value"] is None
    assert _apollo(api_client, auth) == 201


def test_a_rename_needs_the_same_proof_again(api_client: TestClient) -> None:
    auth = _found(api_client, "acme-rename.example")
    headers = {"Authorization": auth["Authorization"]}
    url = f"/api/v1/domains/{auth['domain_id']}"
    first = api_client.get(f"{url}/verification", headers=headers).json()
    PUBLISHED[first["record_name"]] = [first["record_value"]]
    assert api_client.post(f"{url}/verification", headers=headers).status_code == 200
    # When the manager renames the verified domain to a name they have not proven
    renamed = api_client.patch(url, json={"domain_name": "bigcorp-target.example"}, headers=headers)
    assert renamed.status_code == 200 and renamed.json()["verified_at"] is None
    # Then the old proof does not carry over: a new record, at the new name, with a new value
    again = api_client.get(f"{url}/verification", headers=headers).json()
    assert again["record_name"] == "_dashin-verify.bigcorp-target.example"
    assert again["record_value"] != first["record_value"]
    assert api_client.post(f"{url}/verification", headers=headers).status_code == 409
    assert _apollo(api_client, auth) == 403


def test_only_managers_run_the_check_and_the_limit_can_be_lifted(
    api_client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = _found(api_client, "acme-roles.example")
    member = make_user("acme-roles.example", role="member")
    url = f"/api/v1/domains/{auth['domain_id']}/verification"
    assert api_client.get(url, headers=member.auth).json()["status"] == "unverified"
    assert api_client.post(url, headers=member.auth).status_code == 403
    # An operator who needs no proof (a single-tenant install) turns the limit off
    monkeypatch.setenv("DASHIN_REQUIRE_DOMAIN_PROOF", "false")
    reset_settings_cache()
    assert _apollo(api_client, auth) == 201


def _age(engine: Engine, domain_id: str, days: float) -> None:
    """Move the domain's founding and its name's claim `days` into the past (the release rule
    reads `name_claimed_at`)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE domains SET created_at = now() - make_interval(secs => :s),"
                " name_claimed_at = now() - make_interval(secs => :s) WHERE id = :id"
            ),
            {"s": days * 86400, "id": domain_id},
        )


def test_an_unproven_claim_lapses_and_the_name_can_be_founded_again(
    api_client: TestClient, engine: Engine
) -> None:
    # Given a squatter's domain, unverified
    squatter = _found(api_client, "lapsing.example")
    other = {
        "email": "real@lapsing.example",
        "password": "correct horse battery staple",
        "domain_name": "lapsing.example",
    }
    # While the claim is young, the name is taken
    _age(engine, squatter["domain_id"], 6.9)
    assert api_client.post("/api/v1/auth/signup", json=other).status_code == 409
    # When it stayed unproven past the release time, the real owner founds the name
    _age(engine, squatter["domain_id"], 7.1)
    founded = api_client.post("/api/v1/auth/signup", json=other)
    assert founded.status_code == 201 and founded.json()["domain_id"] != squatter["domain_id"]
    # And the squatter's tenant survives under a placeholder name, unverified
    headers = {"Authorization": squatter["Authorization"]}
    old = api_client.get(f"/api/v1/domains/{squatter['domain_id']}", headers=headers).json()
    assert old["domain_name"].endswith(".invalid") and old["verified_at"] is None


def test_a_verified_domain_never_lapses(api_client: TestClient, engine: Engine) -> None:
    owner = _found(api_client, "kept.example")
    url = f"/api/v1/domains/{owner['domain_id']}/verification"
    headers = {"Authorization": owner["Authorization"]}
    proof = api_client.get(url, headers=headers).json()
    PUBLISHED[proof["record_name"]] = [proof["record_value"]]
    assert api_client.post(url, headers=headers).status_code == 200
    _age(engine, owner["domain_id"], 365)
    other = {
        "email": "x@kept.example",
        "password": "correct horse battery staple",
        "domain_name": "kept.example",
    }
    assert api_client.post("/api/v1/auth/signup", json=other).status_code == 409


def test_a_mail_to_an_address_at_the_domain_proves_it(
    api_client: TestClient, mailer: RecordingMailer
) -> None:
    owner = _found(api_client, "mailproof.example")
    headers = {"Authorization": owner["Authorization"]}
    url = f"/api/v1/domains/{owner['domain_id']}/verification"
    # An address elsewhere is refused: the mail must land at the domain
    elsewhere = api_client.post(f"{url}/mail", json={"email": "me@gmail.com"}, headers=headers)
    assert elsewhere.status_code == 422 and elsewhere.json()["errors"][0]["field"] == "email"
    sent = api_client.post(
        f"{url}/mail", json={"email": "postmaster@mailproof.example"}, headers=headers
    )
    assert sent.status_code == 202 and sent.json()["status"] == "unverified"
    assert mailer.sent[-1].to == "postmaster@mailproof.example"
    token = mailer.sent[-1].body.split("\n\n")[1]
    # A wrong token is refused naming the field; the mailed one verifies the domain
    wrong = api_client.post(url, json={"mail_token": "0" * 40}, headers=headers)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "mail_token"
    ok = api_client.post(url, json={"mail_token": token}, headers=headers)
    assert ok.status_code == 200 and ok.json()["status"] == "verified"
    assert _apollo(api_client, owner) == 201


def test_a_lapsed_name_can_be_taken_by_creating_or_renaming_a_domain(
    api_client: TestClient, engine: Engine
) -> None:
    # Given two unproven claims past the release time
    squat_a = _found(api_client, "lapsed-create.example")
    squat_b = _found(api_client, "lapsed-rename.example")
    for squatter in (squat_a, squat_b):
        _age(engine, squatter["domain_id"], 7.1)
    # And a manager of another domain
    owner = _found(api_client, "real-owner.example")
    headers = {"Authorization": owner["Authorization"]}
    # When the manager creates a domain with the first name, and renames theirs to the second
    created = api_client.post(
        "/api/v1/domains", json={"domain_name": "lapsed-create.example"}, headers=headers
    )
    renamed = api_client.patch(
        f"/api/v1/domains/{owner['domain_id']}",
        json={"domain_name": "lapsed-rename.example"},
        headers=headers,
    )
    # Then both names are theirs now (unverified until proven), the squatters' tenants renamed
    assert created.status_code == 201, created.text
    assert created.json()["domain_name"] == "lapsed-create.example"
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["domain_name"] == "lapsed-rename.example"
    assert renamed.json()["verified_at"] is None
    for squatter in (squat_a, squat_b):
        mine = {"Authorization": squatter["Authorization"]}
        old = api_client.get(f"/api/v1/domains/{squatter['domain_id']}", headers=mine).json()
        assert old["domain_name"].startswith("released-"), old
        assert old["domain_name"].endswith(".invalid"), old


def test_a_renamed_domain_holds_its_new_name_for_the_whole_release_time(
    api_client: TestClient, engine: Engine
) -> None:
    # Given a domain founded long ago and renamed just now to a name it has not proven
    owner = _found(api_client, "old-name.example")
    _age(engine, owner["domain_id"], 30)
    headers = {"Authorization": owner["Authorization"]}
    url = f"/api/v1/domains/{owner['domain_id']}"
    renamed = api_client.patch(url, json={"domain_name": "new-name.example"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    # When another manager claims the new name at once
    other = _found(api_client, "someone-else.example")
    taken = api_client.post(
        "/api/v1/domains",
        json={"domain_name": "new-name.example"},
        headers={"Authorization": other["Authorization"]},
    )
    # Then it is refused: the claim counts from the rename, not from the founding
    assert taken.status_code == 409, taken.text
    assert api_client.get(url, headers=headers).json()["domain_name"] == "new-name.example"
