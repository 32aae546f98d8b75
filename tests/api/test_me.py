"""Self-service: a signed-in user changes their name, password and email (issue 18)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.mailer import RecordingMailer
from tests.api.conftest import MakeUser


def _fields(response: object) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}  # type: ignore[attr-defined]


def _mailed_token(mailer: RecordingMailer, to: str) -> str:
    mail = [m for m in mailer.sent if m.to == to][-1]
    return mail.body.split("\n\n")[1]


def test_patch_me_changes_the_name_and_leaves_out_fields_alone(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    renamed = api_client.patch("/api/v1/me", json={"full_name": "Ada King"}, headers=user.auth)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["full_name"] == "Ada King"
    assert renamed.json()["memberships"][0]["domain_id"] == str(user.domain_id)
    # An empty body changes nothing; null clears the name
    assert api_client.patch("/api/v1/me", json={}, headers=user.auth).json()["full_name"] == (
        "Ada King"
    )
    cleared = api_client.patch("/api/v1/me", json={"full_name": None}, headers=user.auth)
    assert cleared.json()["full_name"] is None
    assert api_client.get("/api/v1/me", headers=user.auth).json()["full_name"] is None


def test_patch_me_refuses_what_it_does_not_change(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    response = api_client.patch("/api/v1/me", json={"email": "x@y.example"}, headers=user.auth)
    assert response.status_code == 422 and "email" in _fields(response)
    assert api_client.patch("/api/v1/me", json={"full_name": "x"}).status_code == 401


def test_password_change_needs_the_current_password_and_ends_other_sessions(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    other_session = api_client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    ).json()["access_token"]
    # A wrong current password is a 422 on that field, and nothing changes
    wrong = {"current_password": "not it at all", "new_password": "a brand new passphrase"}
    refused = api_client.post("/api/v1/me/password", json=wrong, headers=user.auth)
    assert refused.status_code == 422 and _fields(refused) == {"current_password"}
    # The right one sets the new password and answers a fresh token for this client
    body = {"current_password": user.password, "new_password": "a brand new passphrase"}
    changed = api_client.post("/api/v1/me/password", json=body, headers=user.auth)
    assert changed.status_code == 200, changed.text
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert api_client.get("/api/v1/me", headers=fresh).status_code == 200
    # Every earlier session has ended, and only the new password signs in
    assert api_client.get("/api/v1/me", headers=user.auth).status_code == 401
    other = {"Authorization": f"Bearer {other_session}"}
    assert api_client.get("/api/v1/me", headers=other).status_code == 401
    old = {"email": user.email, "password": user.password}
    assert api_client.post("/api/v1/auth/login", json=old).status_code == 401
    new = {"email": user.email, "password": "a brand new passphrase"}
    assert api_client.post("/api/v1/auth/login", json=new).status_code == 200


def test_password_change_validates_the_new_password_and_refuses_api_keys(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    short = {"current_password": user.password, "new_password": "short"}
    response = api_client.post("/api/v1/me/password", json=short, headers=user.auth)
    assert response.status_code == 422 and _fields(response) == {"new_password"}
    key = api_client.post("/api/v1/api-keys", json={"name": "k"}, headers=user.headers)
    by_key = {"Authorization": f"Bearer {key.json()['key']}"}
    body = {"current_password": user.password, "new_password": "a brand new passphrase"}
    assert api_client.post("/api/v1/me/password", json=body, headers=by_key).status_code == 403


def test_email_change_is_confirmed_by_a_token_mailed_to_the_new_address(
    api_client: TestClient, make_user: MakeUser, mailer: RecordingMailer
) -> None:
    user = make_user()
    new_email = f"moved-{user.email}"
    body = {"new_email": new_email, "current_password": user.password}
    asked = api_client.post("/api/v1/me/email", json=body, headers=user.auth)
    assert asked.status_code == 202, asked.text
    # Nothing changes before the new address confirms
    assert api_client.get("/api/v1/me", headers=user.auth).json()["email"] == user.email
    token = _mailed_token(mailer, new_email)
    confirmed = api_client.post("/api/v1/me/email/confirm", json={"token": token})
    assert confirmed.status_code == 204, confirmed.text
    assert api_client.get("/api/v1/me", headers=user.auth).json()["email"] == new_email
    # The old address is told, and sign-in uses the new one
    assert any(m.to == user.email and new_email in m.body for m in mailer.sent)
    login = {"email": new_email, "password": user.password}
    assert api_client.post("/api/v1/auth/login", json=login).status_code == 200
    # The token is spent
    again = api_client.post("/api/v1/me/email/confirm", json={"token": token})
    assert again.status_code == 422 and _fields(again) == {"token"}


def test_email_change_to_a_taken_address_is_a_409_only_at_confirmation(
    api_client: TestClient, make_user: MakeUser, mailer: RecordingMailer
) -> None:
    user, taken = make_user(), make_user()
    body = {"new_email": taken.email, "current_password": user.password}
    free = {"new_email": f"free-{user.email}", "current_password": user.password}
    asked = api_client.post("/api/v1/me/email", json=body, headers=user.auth)
    # The answer does not say whether the address has an account
    other = api_client.post("/api/v1/me/email", json=free, headers=user.auth)
    assert asked.status_code == other.status_code == 202
    assert asked.json().keys() == other.json().keys()
    conflict = api_client.post(
        "/api/v1/me/email/confirm", json={"token": _mailed_token(mailer, taken.email)}
    )
    assert conflict.status_code == 409
    assert api_client.get("/api/v1/me", headers=user.auth).json()["email"] == user.email


def test_email_change_needs_the_current_password_and_a_real_token(
    api_client: TestClient, make_user: MakeUser, mailer: RecordingMailer
) -> None:
    user = make_user()
    body = {"new_email": f"x-{user.email}", "current_password": "not my password"}
    refused = api_client.post("/api/v1/me/email", json=body, headers=user.auth)
    assert refused.status_code == 422 and _fields(refused) == {"current_password"}
    assert not mailer.sent
    # An access token is not an email-change token (each kind has its own key)
    forged = api_client.post("/api/v1/me/email/confirm", json={"token": user.token})
    assert forged.status_code == 422 and _fields(forged) == {"token"}
