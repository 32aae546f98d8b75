"""Which domain a request acts in, and as what, when the caller names none or names one.

The caller's role in their home domain is read with the user (`models.auth_repo`); these pin
the rules that shortcut must keep: the sign-up domain only while still a member (admins
always), else the oldest membership, else 404; a named domain needs a membership (or admin).
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from models import tenancy_repo
from models.tenancy import Membership
from tests.api.conftest import ApiUser, MakeUser


def leave(engine: Engine, user: ApiUser, domain_id: uuid.UUID) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            delete(Membership).where(
                Membership.domain_id == domain_id, Membership.user_id == user.user_id
            )
        )


def join(engine: Engine, user: ApiUser, domain_name: str, role: str) -> uuid.UUID:
    with Session(engine) as session, session.begin():
        domain = tenancy_repo.create_domain(session, domain_name, created_by=None)
        tenancy_repo.add_membership(session, domain.id, user.user_id, role)
        return domain.id


def acting_domain(client: TestClient, headers: dict[str, str]) -> tuple[int, str | None]:
    """(status, domain of a campaign created with `headers`)."""
    response = client.post("/api/v1/campaigns", json={"name": "Q3"}, headers=headers)
    return response.status_code, response.json().get("domain_id")


def test_a_member_acts_in_their_signup_domain_by_default_and_by_id(
    api_client: TestClient, make_user: MakeUser
) -> None:
    member = make_user(role="member")
    for headers in (member.auth, member.headers):
        assert acting_domain(api_client, headers) == (201, str(member.domain_id))


def test_after_leaving_the_signup_domain_the_oldest_membership_is_the_default(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    member = make_user(role="member")
    first = join(engine, member, f"first-{uuid.uuid4().hex[:6]}.example", "member")
    join(engine, member, f"second-{uuid.uuid4().hex[:6]}.example", "member")
    leave(engine, member, member.domain_id)
    assert acting_domain(api_client, member.auth) == (201, str(first))
    # The sign-up domain named explicitly is now a domain they are not in.
    assert acting_domain(api_client, member.headers)[0] == 404


def test_a_user_in_no_domain_has_no_default(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    viewer = make_user(role="viewer")
    leave(engine, viewer, viewer.domain_id)
    assert api_client.get("/api/v1/campaigns", headers=viewer.auth).status_code == 404


def test_the_role_is_the_one_held_in_the_domain_acted_in(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    viewer = make_user(role="viewer")  # may not create campaigns at home
    elsewhere = join(engine, viewer, f"w-{uuid.uuid4().hex[:6]}.example", "manager")
    assert acting_domain(api_client, viewer.auth)[0] == 403
    assert acting_domain(api_client, viewer.headers)[0] == 403
    in_other = {**viewer.auth, "Dashin-Domain": str(elsewhere)}
    assert acting_domain(api_client, in_other) == (201, str(elsewhere))


def test_an_admin_acts_in_their_signup_domain_even_after_leaving_it(
    api_client: TestClient,
    make_user: MakeUser,
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = make_user(role="admin")  # a manager of their own sign-up domain
    with Session(engine) as session:
        user = tenancy_repo.get_user(session, admin.user_id)
        assert user is not None and user.signup_domain_id is not None
        home = str(user.signup_domain_id)
    capsys.readouterr()
    assert acting_domain(api_client, admin.auth) == (201, home)
    assert "admin.domain_access" not in capsys.readouterr().out  # a member there: no audit
    leave(engine, admin, uuid.UUID(home))
    assert acting_domain(api_client, admin.auth) == (201, home)
    captured = capsys.readouterr()
    assert "admin.domain_access" in captured.out + captured.err


def test_an_api_key_acts_in_its_domain_named_by_id_or_name(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    created = api_client.post("/api/v1/api-keys", json={"name": "k"}, headers=user.headers)
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    for ref in (None, str(user.domain_id), user.domain_name):
        headers = key if ref is None else {**key, "Dashin-Domain": ref}
        assert acting_domain(api_client, headers) == (201, str(user.domain_id))
    other = make_user()
    assert acting_domain(api_client, {**key, "Dashin-Domain": str(other.domain_id)})[0] == 404


def test_a_platform_admins_key_acts_in_any_domain_it_names(
    api_client: TestClient, make_user: MakeUser
) -> None:
    # Given a platform admin's API key (like the one `dashin up` prints) and another domain
    admin = make_user(role="admin")
    created = api_client.post("/api/v1/api-keys", json={"name": "k"}, headers=admin.headers)
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    other = make_user()
    # Then it acts in its own domain by default and in the other one when named (id or name)
    assert acting_domain(api_client, key) == (201, str(admin.domain_id))
    for ref in (str(other.domain_id), other.domain_name):
        assert acting_domain(api_client, {**key, "Dashin-Domain": ref}) == (
            201,
            str(other.domain_id),
        )
    # but a domain that does not exist is still a 404
    assert acting_domain(api_client, {**key, "Dashin-Domain": "nope.example"})[0] == 404
