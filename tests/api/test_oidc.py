"""Sign-in with an identity provider (issue 18, item 2): ID tokens from a local issuer that
serves its own discovery document and JWKS over a real socket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from runtime.errors import ConfigurationError
from runtime.settings import load_settings, reset_settings_cache
from tests.api.conftest import ApiUser, MakeUser
from tests.api.oidc_issuer import AUDIENCE, LocalIssuer, new_rsa_key

OIDC = "/api/v1/auth/oidc"


@pytest.fixture
def issuer(api_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIssuer]:
    issuer = LocalIssuer.start()
    monkeypatch.setenv("DASHIN_OIDC_ISSUERS", issuer.settings_json())
    reset_settings_cache()
    yield issuer
    issuer.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient, id_token: str, **extra: Any) -> Any:
    return client.post(OIDC, json={"id_token": id_token, **extra})


def test_an_existing_user_signs_in_with_an_id_token(
    api_client: TestClient, issuer: LocalIssuer, make_user: MakeUser
) -> None:
    user = make_user()
    # Given an ID token for the user's email, in another case
    response = sign_in(api_client, issuer.id_token(user.email.upper(), name="Ada"))
    # Then it is exchanged for our own pair, which opens the API
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["refresh_token"].startswith("drt_") and tokens["token_type"] == "bearer"
    me = api_client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == str(user.user_id)
    sessions = api_client.get("/api/v1/me/sessions", headers=bearer(tokens["access_token"]))
    [listed] = sessions.json()["items"]
    assert listed["method"] == "oidc" and listed["issuer"] == issuer.url and listed["current"]


def _alg_none(issuer: LocalIssuer, email: str) -> str:
    return jwt.encode(issuer.claims(email), "", algorithm="none", headers={"kid": issuer.kid})


def _hs256(issuer: LocalIssuer, email: str) -> str:
    # the classic confusion: an HMAC "signed" with what the JWKS publishes
    secret = str(issuer.public_jwk(issuer.kid)["n"]).encode()
    return jwt.encode(issuer.claims(email), secret, algorithm="HS256", headers={"kid": issuer.kid})


REFUSED: dict[str, Callable[[LocalIssuer, str], str]] = {
    "wrong audience": lambda i, e: i.id_token(e, aud="another-app"),
    "unknown issuer": lambda i, e: i.id_token(e, iss="https://evil.example"),
    "expired": lambda i, e: i.id_token(e, exp=int(time.time()) - 120),
    "issued in the future": lambda i, e: i.id_token(e, iat=int(time.time()) + 600),
    "alg none": _alg_none,
    "HS256": _hs256,
    "forged with another key": lambda i, e: i.id_token(e, key=new_rsa_key()),
    "email not verified": lambda i, e: i.id_token(e, email_verified=False),
    "no email": lambda i, e: i.id_token(e, email=None),
    "no expiry": lambda i, e: i.id_token(e, exp=None),
    "not a JWT": lambda i, e: "not-a-token",
}


@pytest.mark.parametrize("case", REFUSED)
def test_bad_id_tokens_are_refused_with_401(
    api_client: TestClient, issuer: LocalIssuer, make_user: MakeUser, case: str
) -> None:
    user = make_user()
    response = sign_in(api_client, REFUSED[case](issuer, user.email))
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "refused" in response.json()["detail"]


def test_a_token_expired_within_the_leeway_is_accepted(
    api_client: TestClient, issuer: LocalIssuer, make_user: MakeUser
) -> None:
    user = make_user()
    token = issuer.id_token(user.email, exp=int(time.time()) - 5)  # leeway: 30 s
    assert sign_in(api_client, token).status_code == 200


def test_rotated_keys_are_fetched_again_and_cached_otherwise(
    api_client: TestClient,
    issuer: LocalIssuer,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DASHIN_OIDC_JWKS_MIN_REFRESH_S", "0")
    reset_settings_cache()
    user = make_user()
    assert sign_in(api_client, issuer.id_token(user.email)).status_code == 200
    assert sign_in(api_client, issuer.id_token(user.email)).status_code == 200
    assert issuer.jwks_fetches == 1  # cached
    # When the provider rotates its key, a token signed with the new one names an unknown kid
    old_key, old_kid = issuer.keys[issuer.kid], issuer.kid
    issuer.rotate()
    assert sign_in(api_client, issuer.id_token(user.email)).status_code == 200
    assert issuer.jwks_fetches == 2
    # And the retired key no longer signs anything
    retired = issuer.id_token(user.email, key=old_key, kid=old_kid)
    assert sign_in(api_client, retired).status_code == 401


def test_unknown_key_ids_refetch_the_keys_at_most_once_per_interval(
    api_client: TestClient, issuer: LocalIssuer, make_user: MakeUser
) -> None:
    user = make_user()
    assert sign_in(api_client, issuer.id_token(user.email)).status_code == 200
    # When tokens arrive naming made-up key ids (default interval: 30 s)
    for n in range(5):
        forged = issuer.id_token(user.email, key=new_rsa_key(), kid=f"made-up-{n}")
        assert sign_in(api_client, forged).status_code == 401
    # Then the provider was not asked again
    assert issuer.jwks_fetches == 1


def test_an_unreachable_provider_answers_503(
    api_client: TestClient, issuer: LocalIssuer, make_user: MakeUser
) -> None:
    user = make_user()
    token = issuer.id_token(user.email)
    issuer.stop()
    response = sign_in(api_client, token)
    assert response.status_code == 503
    assert response.json()["detail"].startswith("the identity provider's signing keys")


# --- who gets an account ---------------------------------------------------------------------


def test_a_new_email_without_invitation_is_refused_with_403(
    api_client: TestClient, issuer: LocalIssuer
) -> None:
    response = sign_in(api_client, issuer.id_token("stranger@nowhere.example"))
    assert response.status_code == 403
    assert "invitation" in response.json()["detail"]
    # And no account was made: the same answer again
    assert sign_in(api_client, issuer.id_token("stranger@nowhere.example")).status_code == 403


def _invite(client: TestClient, manager: ApiUser, email: str, role: str = "member") -> str:
    response = client.post(
        f"/api/v1/domains/{manager.domain_id}/invitations",
        json={"email": email, "role": role},
        headers=manager.auth,
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def test_an_invitation_creates_the_account_on_first_sign_in(
    api_client: TestClient, issuer: LocalIssuer, make_user: MakeUser
) -> None:
    manager = make_user()
    invitation = _invite(api_client, manager, "newbie@elsewhere.example", "viewer")
    # Another email cannot use the invitation
    other = sign_in(
        api_client, issuer.id_token("other@elsewhere.example"), invitation_token=invitation
    )
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "invitation_token"
    # The invited email can, once
    response = sign_in(
        api_client,
        issuer.id_token("newbie@elsewhere.example", name="New Bie"),
        invitation_token=invitation,
    )
    assert response.status_code == 200, response.text
    me = api_client.get("/api/v1/me", headers=bearer(response.json()["access_token"])).json()
    assert me["full_name"] == "New Bie"
    assert me["memberships"] == [
        {"domain_id": str(manager.domain_id), "domain_name": manager.domain_name, "role": "viewer"}
    ]
    # And later sign-ins need no invitation
    assert sign_in(api_client, issuer.id_token("newbie@elsewhere.example")).status_code == 200


def test_a_verified_domain_with_sso_joining_admits_its_people(
    api_client: TestClient, issuer: LocalIssuer, make_user: MakeUser
) -> None:
    manager = make_user()  # fixture domains are verified
    url = f"/api/v1/domains/{manager.domain_id}"
    email = f"colleague@eu.{manager.domain_name}"
    assert sign_in(api_client, issuer.id_token(email)).status_code == 403
    # When the manager turns single sign-on joining on
    turned_on = api_client.patch(url, json={"sso_join_role": "member"}, headers=manager.auth)
    assert turned_on.status_code == 200 and turned_on.json()["sso_join_role"] == "member"
    # Then a colleague (even on a subdomain) joins as a member; other domains still cannot
    response = sign_in(api_client, issuer.id_token(email))
    assert response.status_code == 200, response.text
    me = api_client.get("/api/v1/me", headers=bearer(response.json()["access_token"])).json()
    assert [m["role"] for m in me["memberships"]] == ["member"]
    assert sign_in(api_client, issuer.id_token("x@other-co.example")).status_code == 403
    # And a manager role is not on offer
    refused = api_client.patch(url, json={"sso_join_role": "manager"}, headers=manager.auth)
    assert refused.status_code == 422


def test_sso_joining_needs_a_verified_domain(api_client: TestClient) -> None:
    signed_up = api_client.post(
        "/api/v1/auth/signup",
        json={
            "email": "ann@fresh-co.example",
            "password": "a long enough password",
            "domain_name": "fresh-co.example",
        },
    ).json()
    response = api_client.patch(
        f"/api/v1/domains/{signed_up['domain_id']}",
        json={"sso_join_role": "viewer"},
        headers=bearer(signed_up["access_token"]),
    )
    assert response.status_code == 409
    assert "verified" in response.json()["detail"]


def test_issuer_settings_refuse_plain_http_to_other_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DASHIN_OIDC_ISSUERS", f'[{{"issuer": "http://idp.example", "audience": "{AUDIENCE}"}}]'
    )
    with pytest.raises(ConfigurationError, match="DASHIN_OIDC_ISSUERS"):
        load_settings()
