"""Domains, members and invitations: the role matrix, tenant isolation, the last-manager rule."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from api.mailer import RecordingMailer
from models import tenancy_repo
from runtime.errors import Conflict
from tests.api.conftest import ApiUser, MakeUser


def url(user: ApiUser, tail: str = "") -> str:
    return f"/api/v1/domains/{user.domain_id}{tail}"


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user(domain_name="acme.com")


def as_role(make_user: MakeUser, manager: ApiUser, role: str) -> ApiUser:
    """A caller of `role` towards the manager's domain (non_member: manager of another one)."""
    if role == "manager":
        return manager
    if role == "non_member":
        other = make_user(domain_name="other.example")
        return ApiUser(**{**other.__dict__, "domain_id": manager.domain_id})
    return make_user(domain_name=manager.domain_name, role=role)


# --- create and list --------------------------------------------------------------------------


def test_manager_creates_a_domain_and_manages_it(api_client: TestClient, manager: ApiUser) -> None:
    created = api_client.post(
        "/api/v1/domains", json={"domain_name": "Client.IO"}, headers=manager.auth
    )
    assert created.status_code == 201
    assert created.json()["domain_name"] == "client.io" and created.json()["role"] == "manager"
    listed = api_client.get("/api/v1/domains", headers=manager.auth).json()["items"]
    assert [(d["domain_name"], d["role"]) for d in listed] == [
        ("acme.com", "manager"),
        ("client.io", "manager"),
    ]


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_managers_create_domains(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str
) -> None:
    caller = as_role(make_user, manager, role)
    response = api_client.post(
        "/api/v1/domains", json={"domain_name": "client.io"}, headers=caller.auth
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:dashin:problem:forbidden"


def test_domain_names_are_unique_and_validated(api_client: TestClient, manager: ApiUser) -> None:
    taken = api_client.post(
        "/api/v1/domains", json={"domain_name": "ACME.com"}, headers=manager.auth
    )
    assert taken.status_code == 409
    bad = api_client.post(
        "/api/v1/domains", json={"domain_name": "not a domain"}, headers=manager.auth
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["domain_name"]


def test_list_shows_only_own_domains_but_all_to_admins(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    make_user(domain_name="other.example")
    mine = api_client.get("/api/v1/domains", headers=manager.auth).json()["items"]
    assert [d["domain_name"] for d in mine] == ["acme.com"]
    admin = make_user(domain_name="acme.com", role="admin")
    seen = api_client.get("/api/v1/domains?count=true", headers=admin.auth).json()
    names = {d["domain_name"] for d in seen["items"]}
    assert {"acme.com", "other.example"} <= names and seen["total"] == len(seen["items"])


# --- read, update, delete ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("manager", 200), ("member", 200), ("viewer", 200), ("non_member", 404), ("admin", 200)],
)
def test_get_domain_role_matrix(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, status: int
) -> None:
    caller = (
        as_role(make_user, manager, role)
        if role != "admin"
        else make_user(domain_name="acme.com", role="admin")
    )
    response = api_client.get(url(manager), headers=caller.auth)
    assert response.status_code == status
    if status == 200:
        assert response.json()["role"] == role


@pytest.mark.parametrize(
    ("role", "status"),
    [("manager", 200), ("member", 403), ("viewer", 403), ("non_member", 404)],
)
def test_rename_domain_role_matrix(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, status: int
) -> None:
    caller = as_role(make_user, manager, role)
    response = api_client.patch(url(manager), json={"domain_name": "acme.io"}, headers=caller.auth)
    assert response.status_code == status
    name = api_client.get(url(manager), headers=manager.auth).json()["domain_name"]
    assert name == ("acme.io" if status == 200 else "acme.com")


def test_only_admins_change_subscriptions(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    body = {"subscription_status": "active"}
    assert api_client.patch(url(manager), json=body, headers=manager.auth).status_code == 403
    admin = make_user(domain_name="acme.com", role="admin")
    response = api_client.patch(url(manager), json=body, headers=admin.auth)
    assert response.status_code == 200 and response.json()["subscription_status"] == "active"


def test_unknown_and_malformed_domain_ids(api_client: TestClient, manager: ApiUser) -> None:
    missing = api_client.get(
        "/api/v1/domains/00000000-0000-0000-0000-000000000000", headers=manager.auth
    )
    assert missing.status_code == 404
    malformed = api_client.get("/api/v1/domains/nope", headers=manager.auth)
    assert malformed.status_code == 422
    assert [e["field"] for e in malformed.json()["errors"]] == ["domain_id"]


def test_the_signup_domain_cannot_be_deleted(api_client: TestClient, manager: ApiUser) -> None:
    assert api_client.delete(url(manager), headers=manager.auth).status_code == 409
    assert api_client.get(url(manager), headers=manager.auth).status_code == 200


def test_manager_deletes_another_domain(api_client: TestClient, manager: ApiUser) -> None:
    client_domain = api_client.post(
        "/api/v1/domains", json={"domain_name": "client.io"}, headers=manager.auth
    ).json()
    path = f"/api/v1/domains/{client_domain['id']}"
    assert api_client.delete(path, headers=manager.auth).status_code == 204
    assert api_client.get(path, headers=manager.auth).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"), [("member", 403), ("viewer", 403), ("non_member", 404)]
)
def test_delete_domain_role_matrix(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, status: int
) -> None:
    caller = as_role(make_user, manager, role)
    assert api_client.delete(url(manager), headers=caller.auth).status_code == status
    assert api_client.get(url(manager), headers=manager.auth).status_code == 200


# --- members and invitations ------------------------------------------------------------------


def test_members_list(api_client: TestClient, make_user: MakeUser, manager: ApiUser) -> None:
    viewer = make_user(domain_name="acme.com", role="viewer")
    members = api_client.get(url(manager, "/members"), headers=viewer.auth)
    assert members.status_code == 200
    assert {(m["email"], m["role"]) for m in members.json()["items"]} == {
        (manager.email, "manager"),
        (viewer.email, "viewer"),
    }
    stranger = as_role(make_user, manager, "non_member")
    assert api_client.get(url(manager, "/members"), headers=stranger.auth).status_code == 404


def _shape(value: object) -> object:
    """The keys (recursively) and value types of a JSON answer: what it reveals besides values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__


def test_inviting_an_existing_user_waits_for_consent_and_reveals_no_account(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, mailer: RecordingMailer
) -> None:
    # Issue 14 M1: an existing email was added to the domain at once, with its id and full name.
    existing = make_user(domain_name="other.example")
    # When the manager invites an existing account and an unknown email
    answers = [
        api_client.post(
            url(manager, "/invitations"),
            json={"email": email, "role": "viewer"},
            headers=manager.auth,
        )
        for email in (existing.email, "nobody-yet@x.example")
    ]
    # Then both answers are the same status and shape: a pending invitation, no account data
    assert [a.status_code for a in answers] == [201, 201]
    assert _shape(answers[0].json()) == _shape(answers[1].json())
    assert answers[0].json()["status"] == "invited"
    assert str(existing.user_id) not in answers[0].text
    # And the existing user is not a member until they accept
    headers = {**existing.auth, "Dashin-Domain": "acme.com"}
    assert api_client.get("/api/v1/campaigns", headers=headers).status_code == 404
    assert [m.to for m in mailer.sent] == [existing.email, "nobody-yet@x.example"]
    token = answers[0].json()["token"]
    assert token in mailer.sent[0].body and "/auth/invitation/accept" in mailer.sent[0].body
    # When another signed-in user tries the token, it is refused and stays usable
    intruder = make_user(domain_name="third.example")
    stolen = api_client.post(
        "/api/v1/auth/invitation/accept", json={"token": token}, headers=intruder.auth
    )
    assert stolen.status_code == 422 and stolen.json()["errors"][0]["field"] == "token"
    # When the invitee accepts, they join with the invited role, once
    accepted = api_client.post(
        "/api/v1/auth/invitation/accept", json={"token": token}, headers=existing.auth
    )
    assert accepted.status_code == 201
    assert accepted.json() == {
        "domain_id": str(manager.domain_id),
        "domain_name": "acme.com",
        "role": "viewer",
    }
    assert api_client.get("/api/v1/campaigns", headers=headers).status_code == 200
    again = api_client.post(
        "/api/v1/auth/invitation/accept", json={"token": token}, headers=existing.auth
    )
    assert again.status_code == 422


def test_inviting_a_new_email_issues_a_mailed_token(
    api_client: TestClient, manager: ApiUser, mailer: RecordingMailer
) -> None:
    response = api_client.post(
        url(manager, "/invitations"), json={"email": "new@x.example"}, headers=manager.auth
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "invited" and body["invitation"]["role"] == "member"
    assert mailer.sent[-1].to == "new@x.example" and body["token"] in mailer.sent[-1].body


@pytest.mark.parametrize(
    ("role", "status"), [("member", 403), ("viewer", 403), ("non_member", 404)]
)
def test_invite_role_matrix(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, status: int
) -> None:
    caller = as_role(make_user, manager, role)
    response = api_client.post(
        url(manager, "/invitations"), json={"email": "new@x.example"}, headers=caller.auth
    )
    assert response.status_code == status


def test_invitation_validation(api_client: TestClient, manager: ApiUser) -> None:
    response = api_client.post(
        url(manager, "/invitations"),
        json={"email": "x@y.example", "role": "owner"},
        headers=manager.auth,
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["role"]


def test_the_last_manager_can_be_neither_demoted_nor_removed(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    me = url(manager, f"/members/{manager.user_id}")
    demote = api_client.patch(me, json={"role": "member"}, headers=manager.auth)
    assert demote.status_code == 409
    assert api_client.delete(me, headers=manager.auth).status_code == 409
    # Once another member is promoted, the first manager may step down
    member = make_user(domain_name="acme.com", role="member")
    promote = api_client.patch(
        url(manager, f"/members/{member.user_id}"), json={"role": "manager"}, headers=manager.auth
    )
    assert promote.status_code == 200 and promote.json()["role"] == "manager"
    assert api_client.patch(me, json={"role": "viewer"}, headers=manager.auth).status_code == 200
    assert api_client.get(url(manager), headers=manager.auth).json()["role"] == "viewer"


@pytest.mark.parametrize(
    ("role", "status"), [("member", 403), ("viewer", 403), ("non_member", 404)]
)
def test_change_role_matrix(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, status: int
) -> None:
    caller = as_role(make_user, manager, role)
    path = url(manager, f"/members/{caller.user_id}")
    assert (
        api_client.patch(path, json={"role": "manager"}, headers=caller.auth).status_code == status
    )


def test_members_may_leave_but_not_remove_others(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    member = make_user(domain_name="acme.com", role="member")
    viewer = make_user(domain_name="acme.com", role="viewer")
    other = url(manager, f"/members/{viewer.user_id}")
    assert api_client.delete(other, headers=member.auth).status_code == 403
    own = url(manager, f"/members/{member.user_id}")
    assert api_client.delete(own, headers=member.auth).status_code == 204
    assert api_client.get(url(manager), headers=member.auth).status_code == 404
    assert api_client.delete(other, headers=manager.auth).status_code == 204
    unknown = url(manager, "/members/00000000-0000-0000-0000-000000000000")
    assert api_client.delete(unknown, headers=manager.auth).status_code == 404


# --- acting in a domain -----------------------------------------------------------------------


def test_dashin_domain_accepts_a_name_and_defaults_to_the_signup_domain(
    api_client: TestClient, manager: ApiUser
) -> None:
    client_domain = api_client.post(
        "/api/v1/domains", json={"domain_name": "client.io"}, headers=manager.auth
    ).json()
    api_client.post(
        "/api/v1/campaigns",
        json={"name": "Q3"},
        headers={**manager.auth, "Dashin-Domain": "client.io"},
    )
    in_client = api_client.get(
        "/api/v1/campaigns", headers={**manager.auth, "Dashin-Domain": client_domain["id"]}
    ).json()["items"]
    assert [c["domain_id"] for c in in_client] == [client_domain["id"]]
    default = api_client.get("/api/v1/campaigns", headers=manager.auth).json()["items"]
    assert default == []


def test_a_domain_you_do_not_belong_to_is_not_found(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    other = make_user(domain_name="other.example")
    for ref in ("acme.com", str(manager.domain_id), "missing.example"):
        headers = {**other.auth, "Dashin-Domain": ref}
        assert api_client.get("/api/v1/campaigns", headers=headers).status_code == 404


def test_admin_acts_in_any_domain_and_is_audited(
    api_client: TestClient,
    make_user: MakeUser,
    manager: ApiUser,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = make_user(domain_name="acme.com", role="admin")
    created = api_client.post("/api/v1/campaigns", json={"name": "Support"}, headers=admin.headers)
    assert created.status_code == 201
    assert created.json()["domain_id"] == str(manager.domain_id)
    captured = capsys.readouterr()
    assert "admin.domain_access" in captured.out + captured.err


def test_two_managers_demoting_each_other_at_once_leave_one_manager(
    make_user: MakeUser, manager: ApiUser, engine: Engine
) -> None:
    """The domain row lock serialises membership changes: the second demotion sees the first."""
    second = make_user(domain_name="acme.com", role="manager")
    outcome: list[str] = []

    def demote_second() -> None:
        with Session(engine) as session, session.begin():
            try:
                tenancy_repo.change_role(session, manager.domain_id, second.user_id, "member")
                outcome.append("demoted")
            except Conflict:
                outcome.append("conflict")

    # Given manager 1 demoted in an open transaction (holding the domain lock)
    with Session(engine) as first, first.begin():
        tenancy_repo.change_role(first, manager.domain_id, manager.user_id, "member")
        # When manager 2's demotion starts and waits for that lock
        worker = threading.Thread(target=demote_second)
        worker.start()
        _wait_for_a_lock_waiter(engine)
    # Then, once the first commits, the second sees it and is refused
    worker.join(timeout=30)
    assert outcome == ["conflict"]
    with Session(engine) as session:
        roles = {
            m.user_id: m.role
            for m in session.scalars(tenancy_repo.members_query(manager.domain_id))
        }
    assert roles == {manager.user_id: "member", second.user_id: "manager"}


def _wait_for_a_lock_waiter(engine: Engine, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting: int = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            conn.rollback()
        raise AssertionError("no transaction ever waited for the domain lock")


# --- ownership (issue 14, M2) -------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["co.uk", "github.io", "blogspot.com"])
def test_public_suffixes_can_be_neither_founded_nor_taken(
    api_client: TestClient, manager: ApiUser, suffix: str
) -> None:
    signup = api_client.post(
        "/api/v1/auth/signup",
        json={
            "email": f"ada@{suffix}",
            "password": "correct horse battery staple",
            "domain_name": suffix,
        },
    )
    created = api_client.post("/api/v1/domains", json={"domain_name": suffix}, headers=manager.auth)
    renamed = api_client.patch(url(manager), json={"domain_name": suffix}, headers=manager.auth)
    for response in (signup, created, renamed):
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["domain_name"]
        assert "public suffix" in response.json()["errors"][0]["message"]
    # A company's domain under such a suffix is fine
    ok = api_client.post(
        "/api/v1/domains", json={"domain_name": f"acme.{suffix}"}, headers=manager.auth
    )
    assert ok.status_code == 201
