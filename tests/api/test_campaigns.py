"""Campaigns: the role matrix, slugs, filters, cursor pages, soft delete, tenant isolation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ApiUser, MakeUser

BASE = "/api/v1/campaigns"


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user(domain_name="acme.com")


def caller_as(make_user: MakeUser, manager: ApiUser, role: str) -> ApiUser:
    """A caller of `role` aiming at the manager's domain (non_member: a member of another)."""
    if role == "manager":
        return manager
    if role == "non_member":
        other = make_user(domain_name="other.example")
        return ApiUser(**{**other.__dict__, "domain_id": manager.domain_id})
    return make_user(domain_name=manager.domain_name, role=role)


def create(client: TestClient, user: ApiUser, name: str, **extra: object) -> dict[str, object]:
    response = client.post(BASE, json={"name": name, **extra}, headers=user.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


ROLE_WRITES = [
    ("manager", 201),
    ("member", 201),
    ("admin", 201),
    ("viewer", 403),
    ("non_member", 404),
]


@pytest.mark.parametrize(("role", "status"), ROLE_WRITES)
def test_create_role_matrix(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, status: int
) -> None:
    caller = caller_as(make_user, manager, role)
    response = api_client.post(BASE, json={"name": "Q3 outreach"}, headers=caller.headers)
    assert response.status_code == status
    if status == 201:
        body = response.json()
        assert body["domain_id"] == str(manager.domain_id)
        assert body["created_by"] == str(caller.user_id)
        assert (body["slug"], body["status"]) == ("q3-outreach", "active")


@pytest.mark.parametrize(
    ("role", "status"),
    [("manager", 200), ("member", 200), ("viewer", 200), ("admin", 200), ("non_member", 404)],
)
def test_read_role_matrix(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, status: int
) -> None:
    campaign = create(api_client, manager, "Q3")
    caller = caller_as(make_user, manager, role)
    assert api_client.get(f"{BASE}/{campaign['id']}", headers=caller.headers).status_code == status
    listed = api_client.get(BASE, headers=caller.headers)
    assert listed.status_code == status
    if status == 200:
        assert [c["id"] for c in listed.json()["items"]] == [campaign["id"]]


@pytest.mark.parametrize(
    ("role", "status"), [("manager", 200), ("member", 200), ("viewer", 403), ("non_member", 404)]
)
def test_update_role_matrix(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, status: int
) -> None:
    campaign = create(api_client, manager, "Q3")
    caller = caller_as(make_user, manager, role)
    path = f"{BASE}/{campaign['id']}"
    response = api_client.patch(path, json={"status": "paused"}, headers=caller.headers)
    assert response.status_code == status
    now = api_client.get(path, headers=manager.headers).json()
    assert now["status"] == ("paused" if status == 200 else "active")
    if status == 200:
        assert now["updated_at"] >= campaign["updated_at"]


@pytest.mark.parametrize(
    ("role", "status"), [("manager", 204), ("member", 204), ("viewer", 403), ("non_member", 404)]
)
def test_delete_role_matrix(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, status: int
) -> None:
    campaign = create(api_client, manager, "Q3")
    caller = caller_as(make_user, manager, role)
    path = f"{BASE}/{campaign['id']}"
    assert api_client.delete(path, headers=caller.headers).status_code == status
    expected = 404 if status == 204 else 200
    assert api_client.get(path, headers=manager.headers).status_code == expected


def test_soft_deleted_campaigns_vanish_but_keep_their_slug(
    api_client: TestClient, manager: ApiUser
) -> None:
    first = create(api_client, manager, "Café Owners!")
    assert first["slug"] == "cafe-owners"
    api_client.delete(f"{BASE}/{first['id']}", headers=manager.headers)
    assert api_client.get(BASE, headers=manager.headers).json()["items"] == []
    assert api_client.delete(f"{BASE}/{first['id']}", headers=manager.headers).status_code == 404
    second = create(api_client, manager, "cafe owners")
    third = create(api_client, manager, "Cafe  owners")
    assert (second["slug"], third["slug"]) == ("cafe-owners-2", "cafe-owners-3")


def test_slugs_are_unique_per_domain_only(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    other = make_user(domain_name="other.example")
    assert create(api_client, manager, "Q3")["slug"] == create(api_client, other, "Q3")["slug"]


def test_filters_by_status_and_name(api_client: TestClient, manager: ApiUser) -> None:
    create(api_client, manager, "Dentists Ohio")
    create(api_client, manager, "Dentists Texas", status="paused")
    create(api_client, manager, "Roofers 100%")

    def names(query: str) -> list[str]:
        response = api_client.get(f"{BASE}?sort=name&{query}", headers=manager.headers)
        assert response.status_code == 200
        return [c["name"] for c in response.json()["items"]]

    assert names("q=dentists") == ["Dentists Ohio", "Dentists Texas"]
    assert names("q=dentists&status=paused") == ["Dentists Texas"]
    assert names("q=100%25") == ["Roofers 100%"]
    assert names("q=%25") == ["Roofers 100%"]  # a literal %, not a wildcard


def test_cursor_pages_walk_the_whole_list(api_client: TestClient, manager: ApiUser) -> None:
    ids = [create(api_client, manager, f"C{n}")["id"] for n in range(5)]
    seen: list[object] = []
    cursor = None
    totals = []
    while True:
        query = f"{BASE}?page_size=2&count=true" + (f"&cursor={cursor}" if cursor else "")
        page = api_client.get(query, headers=manager.headers).json()
        seen.extend(c["id"] for c in page["items"])
        totals.append(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # default sort: newest first
    assert totals == [5, 5, 5]
    assert "total" not in api_client.get(BASE, headers=manager.headers).json()


def test_ascending_name_sort_pages(api_client: TestClient, manager: ApiUser) -> None:
    for name in ("b", "a", "c"):
        create(api_client, manager, name)
    first = api_client.get(f"{BASE}?sort=name&page_size=2", headers=manager.headers).json()
    assert [c["name"] for c in first["items"]] == ["a", "b"]
    rest = api_client.get(
        f"{BASE}?sort=name&page_size=2&cursor={first['next_cursor']}", headers=manager.headers
    ).json()
    assert [c["name"] for c in rest["items"]] == ["c"] and rest["next_cursor"] is None
    # A cursor belongs to its sort order
    mixed = api_client.get(
        f"{BASE}?sort=-name&cursor={first['next_cursor']}", headers=manager.headers
    )
    assert mixed.status_code == 422 and mixed.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page_size=201", "page_size"),
        ("page_size=0", "page_size"),
        ("sort=secret", "sort"),
        ("cursor=!!not-a-cursor", "cursor"),
        ("status=archived", "status"),
    ],
)
def test_list_parameters_are_validated(
    api_client: TestClient, manager: ApiUser, query: str, field: str
) -> None:
    response = api_client.get(f"{BASE}?{query}", headers=manager.headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "x", "status": "done"}, "status"),
        ({"name": "x", "targeting_criteria": [1]}, "targeting_criteria"),
        # PostgreSQL cannot store NUL: refused as input, not failed as a 500
        ({"name": "x", "objective": "a\x00b"}, "objective"),
        # the input gate names the exact place inside free-form JSON
        ({"name": "x", "targeting_criteria": {"k": ["a\x00"]}}, "targeting_criteria.k.0"),
    ],
)
def test_create_validation_names_the_field(
    api_client: TestClient, manager: ApiUser, body: dict[str, object], field: str
) -> None:
    response = api_client.post(BASE, json=body, headers=manager.headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_update_changes_only_sent_fields_and_refuses_nulls(
    api_client: TestClient, manager: ApiUser
) -> None:
    campaign = create(api_client, manager, "Q3", objective="meetings", source="apollo")
    path = f"{BASE}/{campaign['id']}"
    renamed = api_client.patch(path, json={"name": "Q4", "source": None}, headers=manager.headers)
    assert renamed.status_code == 200
    body = renamed.json()
    assert (body["name"], body["slug"], body["objective"], body["source"]) == (
        "Q4",
        "q3",
        "meetings",
        None,
    )
    nulled = api_client.patch(path, json={"name": None}, headers=manager.headers)
    assert nulled.status_code == 422 and nulled.json()["errors"][0]["field"] == "name"


def test_unknown_and_foreign_campaigns_are_not_found(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    campaign = create(api_client, manager, "Q3")
    other = make_user(domain_name="other.example")
    # A member of domain B asks for domain A's campaign in its own domain
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        response = getattr(api_client, method)(
            f"{BASE}/{campaign['id']}", headers=other.headers, **kwargs
        )
        assert response.status_code == 404, method
    missing = api_client.get(
        f"{BASE}/00000000-0000-0000-0000-000000000000", headers=manager.headers
    )
    assert missing.status_code == 404
    assert api_client.get(f"{BASE}/1", headers=manager.headers).status_code == 422


def test_campaigns_require_authentication(api_client: TestClient) -> None:
    assert api_client.get(BASE).status_code == 401
    assert api_client.post(BASE, json={"name": "x"}).status_code == 401
