"""API keys end with their owner's access (issue 14, lower findings).

The probe's finding: keys survived their owner's password reset, so whoever had taken over an
account kept working keys after the owner took it back. Now a reset revokes the owner's keys
and so does leaving a domain (that domain's keys), except keys marked `service`.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.mailer import RecordingMailer
from models import tenancy_repo
from tests.api.conftest import ApiUser, MakeUser


def _key(client: TestClient, user: ApiUser, **extra: object) -> dict[str, str]:
    created = client.post("/api/v1/api-keys", json={"name": "k", **extra}, headers=user.headers)
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


def _works(client: TestClient, key: dict[str, str]) -> bool:
    status: int = client.get("/api/v1/campaigns", headers=key).status_code
    assert status in (200, 401)
    return status == 200


def test_a_password_reset_revokes_keys_but_service_keys(
    api_client: TestClient, make_user: MakeUser, mailer: RecordingMailer
) -> None:
    manager = make_user()
    plain, service = _key(api_client, manager), _key(api_client, manager, service=True)
    listed = api_client.get("/api/v1/api-keys", headers=manager.auth).json()["items"]
    assert sorted(k["service"] for k in listed) == [False, True]
    # When the owner resets their password
    api_client.post("/api/v1/auth/password-reset", json={"email": manager.email})
    token = mailer.sent[-1].body.split("\n\n")[1]
    body = {"token": token, "new_password": "brand new password"}
    assert api_client.post("/api/v1/auth/password-reset/confirm", json=body).status_code == 204
    # Then the plain key is revoked and the service key keeps working
    assert (_works(api_client, plain), _works(api_client, service)) == (False, True)


def test_only_managers_mark_service_keys(api_client: TestClient, make_user: MakeUser) -> None:
    manager = make_user()
    member = make_user(manager.domain_name, role="member")
    refused = api_client.post(
        "/api/v1/api-keys", json={"name": "k", "service": True}, headers=member.headers
    )
    assert refused.status_code == 403
    assert _works(api_client, _key(api_client, member))  # a plain key is fine


def test_leaving_a_domain_revokes_its_keys_for_good(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    member = make_user(manager.domain_name, role="member")
    key = _key(api_client, member)
    # When the member is removed and later invited back (re-added here directly)
    removed = api_client.delete(
        f"/api/v1/domains/{manager.domain_id}/members/{member.user_id}", headers=manager.headers
    )
    assert removed.status_code == 204
    with Session(engine) as session, session.begin():
        tenancy_repo.add_membership(session, manager.domain_id, member.user_id, "member")
    # Then the old key does not come back to life
    assert not _works(api_client, key)
