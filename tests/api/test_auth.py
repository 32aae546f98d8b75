"""Sign-up, login (rate limits), password reset, /me, API keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
import structlog
import structlog.testing
from fastapi.testclient import TestClient

from api import security
from api.mailer import LoggingMailer, Mail, RecordingMailer
from api.ratelimit import Limit, LoginLimits
from runtime.settings import get_settings, reset_settings_cache
from tests.api.conftest import MakeUser

PASSWORD = "a long enough password"


def signup(client: TestClient, email: str, domain: str, **extra: str) -> dict[str, object]:
    body = {"email": email, "password": PASSWORD, "domain_name": domain, **extra}
    response = client.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def bearer(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fields(response: object) -> set[str]:
    body = response.json()  # type: ignore[attr-defined]
    return {e["field"] for e in body["errors"]}


# --- sign-up -----------------------------------------------------------------------------------


def test_signup_founds_a_domain_as_its_manager(api_client: TestClient) -> None:
    result = signup(api_client, "Ann@Acme.com", "ACME.com")
    assert result["role"] == "manager"
    assert "password" not in str(result) and "password_hash" not in str(result)
    me = api_client.get("/api/v1/me", headers=bearer(result["access_token"])).json()
    assert me["email"] == "ann@acme.com"
    assert me["memberships"] == [
        {"domain_id": result["domain_id"], "domain_name": "acme.com", "role": "manager"}
    ]
    assert me["signup_domain_id"] == result["domain_id"]


def test_signup_accepts_an_email_on_a_subdomain(api_client: TestClient) -> None:
    assert signup(api_client, "bo@eu.acme.com", "acme.com")["role"] == "manager"


def test_signup_domain_must_match_the_email(api_client: TestClient) -> None:
    body = {"email": "ann@gmail.com", "password": PASSWORD, "domain_name": "acme.com"}
    response = api_client.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "domain_name"
    assert response.json()["errors"][0]["code"] == "domain_mismatch"


def test_signup_any_domain_name_when_settings_allow(
    api_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHIN_ALLOW_ANY_DOMAIN_NAME", "true")
    reset_settings_cache()
    assert signup(api_client, "ann@gmail.com", "client-co.io")["role"] == "manager"


def test_signup_into_an_existing_domain_needs_an_invitation(api_client: TestClient) -> None:
    signup(api_client, "ann@acme.com", "acme.com")
    body = {"email": "bob@acme.com", "password": PASSWORD, "domain_name": "acme.com"}
    response = api_client.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


def test_signup_twice_with_one_email_conflicts(api_client: TestClient) -> None:
    signup(api_client, "ann@acme.com", "acme.com")
    body = {"email": "ANN@acme.com", "password": PASSWORD, "domain_name": "acme.com"}
    assert api_client.post("/api/v1/auth/signup", json=body).status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "domain_name": "a.com"}, "email"),
        ({"email": "a@a.com", "password": "short", "domain_name": "a.com"}, "password"),
        ({"email": "a@a.com", "password": PASSWORD, "domain_name": "no_dots"}, "domain_name"),
        ({"email": "a@a.com", "password": PASSWORD}, "domain_name"),
    ],
)
def test_signup_validation_names_the_field(
    api_client: TestClient, body: dict[str, str], field: str
) -> None:
    response = api_client.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 422
    assert fields(response) == {field}


def test_invitation_joins_an_existing_domain_once(
    api_client: TestClient, make_user: MakeUser, mailer: RecordingMailer
) -> None:
    # Given a manager who invites a new email as a viewer
    manager = make_user(domain_name="acme.com")
    invited = api_client.post(
        f"/api/v1/domains/{manager.domain_id}/invitations",
        json={"email": "Vic@Client.com", "role": "viewer"},
        headers=manager.headers,
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["token"]
    assert mailer.sent[-1].kind == "invitation" and token in mailer.sent[-1].body
    # When the invitee signs up with it (their email's domain need not match)
    result = signup(api_client, "vic@client.com", "acme.com", invitation_token=token)
    # Then they join as a viewer, and the token cannot be used again
    assert result["role"] == "viewer" and result["domain_id"] == str(manager.domain_id)
    again = api_client.post(
        "/api/v1/auth/signup",
        json={
            "email": "other@client.com",
            "password": PASSWORD,
            "domain_name": "acme.com",
            "invitation_token": token,
        },
    )
    assert again.status_code == 422 and fields(again) == {"invitation_token"}


def test_invitation_is_bound_to_its_email(api_client: TestClient, make_user: MakeUser) -> None:
    manager = make_user(domain_name="acme.com")
    token = api_client.post(
        f"/api/v1/domains/{manager.domain_id}/invitations",
        json={"email": "vic@acme.com"},
        headers=manager.headers,
    ).json()["token"]
    body = {
        "email": "mallory@acme.com",
        "password": PASSWORD,
        "domain_name": "acme.com",
        "invitation_token": token,
    }
    response = api_client.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 422 and fields(response) == {"invitation_token"}


# --- login ---------------------------------------------------------------------------------------


def test_login_returns_a_working_token(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    response = api_client.post(
        "/api/v1/auth/login", json={"email": user.email.upper(), "password": user.password}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == get_settings().jwt_ttl_s
    me = api_client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.json()["id"] == str(user.user_id)


@pytest.mark.parametrize("known_email", [True, False])
def test_login_failure_does_not_say_which_part_was_wrong(
    api_client: TestClient, make_user: MakeUser, known_email: bool
) -> None:
    user = make_user()
    email = user.email if known_email else "nobody@nowhere.example"
    response = api_client.post("/api/v1/auth/login", json={"email": email, "password": "wrong!"})
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid email or password"
    assert response.headers["www-authenticate"] == "Bearer"


def test_login_backs_off_a_guessing_address(api_client: TestClient, make_user: MakeUser) -> None:
    # More in tests/api/test_login_limits.py (per address, so the user is not locked out)
    user = make_user()
    wrong = {"email": user.email, "password": "wrong password"}
    for _ in range(LoginLimits().free_failures):
        assert api_client.post("/api/v1/auth/login", json=wrong).status_code == 401
    # Even the right password is refused now from this address: the account is being guessed at.
    right = {"email": user.email, "password": user.password}
    limited = api_client.post("/api/v1/auth/login", json=right)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= LoginLimits().backoff_max_s
    assert limited.json()["status"] == 429
    other = make_user()
    ok = {"email": other.email, "password": other.password}
    assert api_client.post("/api/v1/auth/login", json=ok).status_code == 200


def test_login_is_rate_limited_per_client_address(
    api_client: TestClient, make_user: MakeUser
) -> None:
    api_client.app.state.login_limits = LoginLimits(per_ip=Limit(attempts=3, window_s=60))  # type: ignore[attr-defined]
    for n in range(3):
        body = {"email": f"spray{n}@x.example", "password": "guess"}
        assert api_client.post("/api/v1/auth/login", json=body).status_code == 401
    user = make_user()
    body = {"email": user.email, "password": user.password}
    assert api_client.post("/api/v1/auth/login", json=body).status_code == 429


# --- tokens -------------------------------------------------------------------------------------


def test_me_requires_credentials(api_client: TestClient) -> None:
    response = api_client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert api_client.get("/api/v1/me", headers=bearer("garbage")).status_code == 401


def test_expired_or_foreign_tokens_are_refused(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    past = datetime.now(UTC) - timedelta(hours=2)
    claims = {"sub": str(user.user_id), "iat": past, "exp": past + timedelta(hours=1), "pwv": ""}
    expired = jwt.encode(claims, security._jwt_key(get_settings()), algorithm="HS256")
    assert api_client.get("/api/v1/me", headers=bearer(expired)).status_code == 401
    claims["exp"] = datetime.now(UTC) + timedelta(hours=1)
    forged = jwt.encode(claims, "x" * 32, algorithm="HS256")
    assert api_client.get("/api/v1/me", headers=bearer(forged)).status_code == 401


# --- password reset ------------------------------------------------------------------------------


def test_password_reset_for_an_unknown_email_looks_the_same(
    api_client: TestClient, make_user: MakeUser, mailer: RecordingMailer
) -> None:
    user = make_user()
    unknown = api_client.post("/api/v1/auth/password-reset", json={"email": "no@one.example"})
    known = api_client.post("/api/v1/auth/password-reset", json={"email": user.email})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    assert [m.to for m in mailer.sent] == [user.email]


def test_password_reset_is_single_use_and_revokes_old_tokens(
    api_client: TestClient, make_user: MakeUser, mailer: RecordingMailer
) -> None:
    # Given a user who asked for a reset
    user = make_user()
    api_client.post("/api/v1/auth/password-reset", json={"email": user.email})
    token = mailer.sent[-1].body.split("\n\n")[1]
    # When they confirm it with a new password
    body = {"token": token, "new_password": "brand new password"}
    assert api_client.post("/api/v1/auth/password-reset/confirm", json=body).status_code == 204
    # Then the new password works, the old one and old access tokens do not
    login = {"email": user.email, "password": "brand new password"}
    assert api_client.post("/api/v1/auth/login", json=login).status_code == 200
    old = {"email": user.email, "password": user.password}
    assert api_client.post("/api/v1/auth/login", json=old).status_code == 401
    assert api_client.get("/api/v1/me", headers=user.auth).status_code == 401
    # And the reset token is spent
    again = api_client.post("/api/v1/auth/password-reset/confirm", json=body)
    assert again.status_code == 422 and fields(again) == {"token"}


def test_password_reset_confirm_validates_the_new_password(api_client: TestClient) -> None:
    body = {"token": "whatever", "new_password": "short"}
    response = api_client.post("/api/v1/auth/password-reset/confirm", json=body)
    assert response.status_code == 422 and fields(response) == {"new_password"}


# --- API keys ----------------------------------------------------------------------------------


def test_api_key_is_shown_once_and_acts_in_its_domain(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    created = api_client.post("/api/v1/api-keys", json={"name": "etl"}, headers=user.headers)
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("dsk_") and created.json()["prefix"] == key[:12]
    listed = api_client.get("/api/v1/api-keys", headers=user.auth).json()["items"]
    assert [k["name"] for k in listed] == ["etl"]
    assert "key" not in listed[0] and key not in str(listed)
    # The key authenticates, in its own domain by default
    campaigns = api_client.get("/api/v1/campaigns", headers=bearer(key))
    assert campaigns.status_code == 200
    me = api_client.get("/api/v1/api-keys", headers=bearer(key)).json()["items"]
    assert me[0]["last_used_at"] is not None


def test_api_key_cannot_reach_another_domain(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    other = api_client.post(
        "/api/v1/domains", json={"domain_name": "other.example"}, headers=user.headers
    ).json()
    key = api_client.post("/api/v1/api-keys", json={"name": "k"}, headers=user.headers).json()
    headers = {**bearer(key["key"]), "Dashin-Domain": other["id"]}
    assert api_client.get("/api/v1/campaigns", headers=headers).status_code == 404


def test_api_key_cannot_create_keys(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    key = api_client.post("/api/v1/api-keys", json={"name": "k"}, headers=user.headers).json()
    response = api_client.post("/api/v1/api-keys", json={"name": "k2"}, headers=bearer(key["key"]))
    assert response.status_code == 403


def test_revoked_api_key_stops_working(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    key = api_client.post("/api/v1/api-keys", json={"name": "k"}, headers=user.headers).json()
    assert api_client.delete(f"/api/v1/api-keys/{key['id']}", headers=user.auth).status_code == 204
    assert api_client.get("/api/v1/campaigns", headers=bearer(key["key"])).status_code == 401
    assert api_client.delete(f"/api/v1/api-keys/{key['id']}", headers=user.auth).status_code == 404


def test_api_keys_of_others_are_invisible(api_client: TestClient, make_user: MakeUser) -> None:
    owner, stranger = make_user(), make_user()
    key = api_client.post("/api/v1/api-keys", json={"name": "k"}, headers=owner.headers).json()
    assert api_client.get("/api/v1/api-keys", headers=stranger.auth).json()["items"] == []
    gone = api_client.delete(f"/api/v1/api-keys/{key['id']}", headers=stranger.auth)
    assert gone.status_code == 404


def test_api_key_dies_with_its_owners_membership(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    member = make_user(domain_name=manager.domain_name, role="member")
    key = api_client.post("/api/v1/api-keys", json={"name": "k"}, headers=member.headers).json()
    removed = api_client.delete(
        f"/api/v1/domains/{manager.domain_id}/members/{member.user_id}", headers=manager.headers
    )
    assert removed.status_code == 204
    assert api_client.get("/api/v1/campaigns", headers=bearer(key["key"])).status_code == 401


@pytest.mark.parametrize("role", ["manager", "member", "viewer"])
def test_every_role_may_create_api_keys(
    api_client: TestClient, make_user: MakeUser, role: str
) -> None:
    user = (
        make_user(role=role)
        if role == "manager"
        else make_user(domain_name=make_user().domain_name, role=role)
    )
    response = api_client.post("/api/v1/api-keys", json={"name": "k"}, headers=user.headers)
    assert response.status_code == 201
    assert response.json()["domain_id"] == str(user.domain_id)


def test_api_key_name_is_required(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    response = api_client.post("/api/v1/api-keys", json={"name": ""}, headers=user.headers)
    assert response.status_code == 422 and fields(response) == {"name"}


@pytest.mark.parametrize("development", [True, False])
def test_logging_mailer_logs_the_token_only_in_development(development: bool) -> None:
    mail = Mail(to="a@b.example", subject="Reset", body="token: tok-123456", kind="password_reset")
    # structlog's own capture, not the process's stdout: a logging setup cached by an earlier
    # test (the CLI's) may write to a stream capsys no longer sees
    with structlog.testing.capture_logs() as events:
        LoggingMailer(include_body=development).send(mail)
    logged = repr(events)
    assert "a@b.example" in logged
    assert ("tok-123456" in logged) is development
