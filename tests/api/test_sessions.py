"""Sign-in sessions of password logins (issue 18, item 2): rotating refresh tokens with reuse
detection, logout that ends outstanding access tokens, `GET /me/sessions` and revoking one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.sign_in import ip_prefix, user_agent_family
from tests.api.conftest import ApiUser, MakeUser

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, user: ApiUser, user_agent: str = FIREFOX) -> dict[str, Any]:
    response = client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": user.password},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(client: TestClient, token: str) -> Any:
    return client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def can_read(client: TestClient, access_token: str) -> bool:
    status: int = client.get("/api/v1/me", headers=bearer(access_token)).status_code
    assert status in (200, 401)
    return status == 200


def test_refresh_rotates_and_a_reused_token_ends_the_whole_session(
    api_client: TestClient, make_user: MakeUser
) -> None:
    first = login(api_client, make_user())
    assert first["refresh_token"].startswith("drt_")
    # When the refresh token is used, it answers a new pair
    second = refresh(api_client, first["refresh_token"])
    assert second.status_code == 200, second.text
    second_pair = second.json()
    assert second_pair["refresh_token"] != first["refresh_token"]
    assert can_read(api_client, second_pair["access_token"])
    third = refresh(api_client, second_pair["refresh_token"]).json()
    assert can_read(api_client, third["access_token"])
    # When the first (spent) token is presented again: someone copied it
    reused = refresh(api_client, first["refresh_token"])
    assert reused.status_code == 401
    assert "already used" in reused.json()["detail"]
    # Then the whole family is revoked: the newest refresh token and every access token
    assert refresh(api_client, third["refresh_token"]).status_code == 401
    assert not can_read(api_client, third["access_token"])
    assert not can_read(api_client, first["access_token"])


def test_logout_ends_the_refresh_token_and_outstanding_access_tokens(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    mine, other_device = login(api_client, user), login(api_client, user)
    assert can_read(api_client, mine["access_token"])
    response = api_client.post("/api/v1/auth/logout", json={"refresh_token": mine["refresh_token"]})
    assert response.status_code == 204
    assert not can_read(api_client, mine["access_token"])  # before its expiry
    assert refresh(api_client, mine["refresh_token"]).status_code == 401
    # Another session of the same user goes on
    assert can_read(api_client, other_device["access_token"])
    # Logging out twice, or with a made-up token, answers the same
    again = api_client.post("/api/v1/auth/logout", json={"refresh_token": mine["refresh_token"]})
    unknown = api_client.post("/api/v1/auth/logout", json={"refresh_token": "drt_nope"})
    assert again.status_code == unknown.status_code == 204


def test_sessions_are_listed_without_secrets_and_one_can_be_revoked(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    laptop = login(api_client, user, FIREFOX)
    phone = login(api_client, user, CHROME_MAC)
    listed = api_client.get("/api/v1/me/sessions", headers=bearer(laptop["access_token"]))
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert {i["user_agent"] for i in items} == {"Firefox on Linux", "Chrome on macOS"}
    assert [i["current"] for i in items if i["user_agent"] == "Firefox on Linux"] == [True]
    assert all(i["method"] == "password" and i["created_at"] and i["last_used_at"] for i in items)
    assert "drt_" not in listed.text and laptop["access_token"] not in listed.text
    # When the laptop ends the phone's session
    [phone_id] = [i["id"] for i in items if i["user_agent"] == "Chrome on macOS"]
    revoked = api_client.delete(
        f"/api/v1/me/sessions/{phone_id}", headers=bearer(laptop["access_token"])
    )
    assert revoked.status_code == 204
    # Then the phone's tokens stop working, the laptop's do not, and the list shrinks
    assert not can_read(api_client, phone["access_token"])
    assert refresh(api_client, phone["refresh_token"]).status_code == 401
    after = api_client.get("/api/v1/me/sessions", headers=bearer(laptop["access_token"])).json()
    assert [i["user_agent"] for i in after["items"]] == ["Firefox on Linux"]
    # Ending it again, or someone else's session, is 404
    again = api_client.delete(
        f"/api/v1/me/sessions/{phone_id}", headers=bearer(laptop["access_token"])
    )
    assert again.status_code == 404
    stranger = login(api_client, make_user())
    theirs = api_client.delete(
        f"/api/v1/me/sessions/{phone_id}", headers=bearer(stranger["access_token"])
    )
    assert theirs.status_code == 404


def test_api_keys_do_not_manage_sign_in_sessions(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    key = api_client.post("/api/v1/api-keys", json={"name": "script"}, headers=user.headers)
    assert key.status_code == 201, key.text
    response = api_client.get("/api/v1/me/sessions", headers=bearer(key.json()["key"]))
    assert response.status_code == 403


def test_a_password_reset_ends_every_session(
    api_client: TestClient, make_user: MakeUser, mailer: Any
) -> None:
    user = make_user()
    pair = login(api_client, user)
    api_client.post("/api/v1/auth/password-reset", json={"email": user.email})
    token = mailer.sent[-1].body.split("\n\n")[1].strip()
    confirmed = api_client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "another long passphrase"},
    )
    assert confirmed.status_code == 204, confirmed.text
    assert refresh(api_client, pair["refresh_token"]).status_code == 401


def test_signup_answers_a_refresh_token_too(api_client: TestClient) -> None:
    body = {"email": "ann@newco.example", "password": "a long enough password"}
    signed_up = api_client.post(
        "/api/v1/auth/signup", json={**body, "domain_name": "newco.example"}
    ).json()
    assert refresh(api_client, signed_up["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("testclient", None),
    ],
)
def test_a_session_keeps_only_an_address_prefix(address: str, prefix: str | None) -> None:
    assert ip_prefix(address) == prefix


def test_a_session_keeps_only_the_user_agent_family() -> None:
    edge = CHROME_MAC.replace("Macintosh; Intel Mac OS X 10_15_7", "Windows NT 10.0") + " Edg/131"
    assert user_agent_family(edge) == "Edge on Windows"
    assert user_agent_family("curl/8.5.0") == "curl"
    assert user_agent_family(None) is None


def test_a_password_change_ends_other_sessions_and_answers_a_fresh_pair(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    mine, other = login(api_client, user), login(api_client, user)
    body = {"current_password": user.password, "new_password": "a brand new passphrase"}
    changed = api_client.post(
        "/api/v1/me/password", json=body, headers=bearer(mine["access_token"])
    )
    assert changed.status_code == 200, changed.text
    assert refresh(api_client, other["refresh_token"]).status_code == 401
    assert refresh(api_client, mine["refresh_token"]).status_code == 401
    renewed = refresh(api_client, changed.json()["refresh_token"])
    assert renewed.status_code == 200 and can_read(api_client, renewed.json()["access_token"])
    listed = api_client.get("/api/v1/me/sessions", headers=bearer(renewed.json()["access_token"]))
    assert len(listed.json()["items"]) == 1
