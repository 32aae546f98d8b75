"""UTM links: full_url construction (property-based), defaults, bulk variants, CRUD, roles."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from models.links_repo import build_full_url
from runtime.errors import ValidationFailed
from tests.api.conftest import ApiUser, MakeUser

# --- full_url, as a pure function ---------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
_key = st.text(st.characters(whitelist_categories=("Ll", "Nd")), min_size=1, max_size=8).filter(
    lambda k: not k.startswith("utm_")
)
_query = st.lists(
    st.tuples(_key, st.text(st.characters(whitelist_categories=("Ll", "Nd")), max_size=8)),
    max_size=4,
)
_fragment = st.one_of(
    st.just(""), st.text(st.characters(whitelist_categories=("Ll", "Nd")), max_size=8)
)
_utm = st.fixed_dictionaries(
    {"utm_source": _text, "utm_medium": _text, "utm_campaign": _text},
    optional={"utm_content": _text, "utm_term": _text},
)


@given(
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
    host=st.from_regex(r"[a-z][a-z0-9-]{0,10}\.(com|io|example)", fullmatch=True),
    path=st.from_regex(r"(/[a-z0-9._~-]{0,8}){0,3}", fullmatch=True),
    query=_query,
    fragment=_fragment,
    utm=_utm,
)
def test_full_url_parses_back_to_destination_plus_exactly_the_utm_values(
    scheme: str,
    host: str,
    path: str,
    query: list[tuple[str, str]],
    fragment: str,
    utm: dict[str, str],
) -> None:
    raw_query = "&".join(f"{k}={v}" for k, v in query)
    destination = (
        f"{scheme}://{host}{path}"
        + (f"?{raw_query}" if raw_query else "")
        + (f"#{fragment}" if fragment else "")
    )
    full = urlsplit(build_full_url(destination, dict(utm)))
    original = urlsplit(destination)
    assert (full.scheme, full.netloc, full.path, full.fragment) == (
        original.scheme,
        original.netloc,
        original.path,
        original.fragment,
    )
    pairs = parse_qsl(full.query, keep_blank_values=True)
    assert pairs == parse_qsl(original.query, keep_blank_values=True) + list(utm.items())


@given(utm=_utm, old=_text)
def test_a_utm_key_of_the_destination_is_replaced_not_duplicated(
    utm: dict[str, str], old: str
) -> None:
    full = build_full_url(
        f"https://x.example/?utm_source={quote(old, safe='')}&keep=1#top", dict(utm)
    )
    pairs = parse_qsl(urlsplit(full).query)
    assert [v for k, v in pairs if k == "utm_source"] == [utm["utm_source"]]
    assert ("keep", "1") in pairs and full.endswith("#top")


@pytest.mark.parametrize(
    "bad",
    [
        "javascript:alert(1)",
        "ftp://x.example/a",
        "/relative/path",
        "mailto:a@b.example",
        "https://",
        "data:text/html,hi",
    ],
)
def test_non_http_destinations_are_refused(bad: str) -> None:
    with pytest.raises(ValidationFailed):
        build_full_url(bad, {"utm_source": "a", "utm_medium": "b", "utm_campaign": "c"})


def test_values_are_percent_encoded() -> None:
    full = build_full_url(
        "https://x.example/p?a=1",
        {"utm_source": "news letter&co", "utm_medium": "e/mail", "utm_campaign": "ü=1"},
    )
    assert (
        full
        == "https://x.example/p?a=1&utm_source=news%20letter%26co&utm_medium=e%2Fmail&utm_campaign=%C3%BC%3D1"
    )


# --- the API ------------------------------------------------------------------------------


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user(domain_name="acme.com")


def campaign(client: TestClient, user: ApiUser, name: str = "Spring Launch") -> dict[str, Any]:
    response = client.post("/api/v1/campaigns", json={"name": name}, headers=user.headers)
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def test_create_defaults_utm_campaign_to_the_slug_and_gives_a_code(
    api_client: TestClient, manager: ApiUser
) -> None:
    c = campaign(api_client, manager)
    response = api_client.post(
        f"/api/v1/campaigns/{c['id']}/links",
        json={
            "destination_url": "https://shop.example/p?id=7#buy",
            "utm_source": "linkedin",
            "utm_medium": "social",
        },
        headers=manager.headers,
    )
    assert response.status_code == 201, response.text
    link = response.json()
    assert link["utm_campaign"] == "spring-launch"
    assert (
        link["full_url"]
        == "https://shop.example/p?id=7&utm_source=linkedin&utm_medium=social&utm_campaign=spring-launch#buy"
    )
    assert len(link["short_code"]) == 8 and link["short_path"] == f"/r/{link['short_code']}"
    bad = api_client.post(
        f"/api/v1/campaigns/{c['id']}/links",
        json={"destination_url": "javascript:alert(1)", "utm_source": "a", "utm_medium": "b"},
        headers=manager.headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "destination_url"


def test_bulk_variants_list_patch_delete(api_client: TestClient, manager: ApiUser) -> None:
    c = campaign(api_client, manager)
    base = f"/api/v1/campaigns/{c['id']}/links"
    made = api_client.post(
        f"{base}/bulk",
        json={
            "destination_url": "https://x.example/",
            "sources": ["li", "fb", "x"],
            "mediums": ["social", "paid"],
        },
        headers=manager.headers,
    )
    assert made.status_code == 201, made.text
    links = made.json()
    assert sorted((lk["utm_source"], lk["utm_medium"]) for lk in links) == sorted(
        (s, m) for s in ("li", "fb", "x") for m in ("social", "paid")
    )
    assert len({lk["short_code"] for lk in links}) == 6
    listed = api_client.get(base, params={"page_size": 4}, headers=manager.headers).json()
    assert len(listed["items"]) == 4 and listed["next_cursor"]
    link = links[0]
    patched = api_client.patch(
        f"/api/v1/links/{link['id']}",
        json={"utm_term": "shoes", "destination_url": "https://y.example/a?b=1"},
        headers=manager.headers,
    )
    assert patched.status_code == 200
    assert patched.json()["full_url"].startswith("https://y.example/a?b=1&utm_source=")
    assert (
        patched.json()["full_url"].endswith("&utm_term=shoes")
        and patched.json()["short_code"] == link["short_code"]
    )
    assert (
        api_client.patch(
            f"/api/v1/links/{link['id']}", json={"utm_source": None}, headers=manager.headers
        ).status_code
        == 422
    )
    assert (
        api_client.delete(f"/api/v1/links/{link['id']}", headers=manager.headers).status_code == 204
    )
    assert api_client.get(f"/api/v1/links/{link['id']}", headers=manager.headers).status_code == 404
    empty = api_client.post(
        f"{base}/bulk", json={"destination_url": "https://x.example/"}, headers=manager.headers
    )
    assert empty.status_code == 422


@pytest.mark.parametrize(
    ("role", "write", "read"),
    [("member", 201, 200), ("viewer", 403, 200), ("non_member", 404, 404)],
)
def test_link_roles(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser, role: str, write: int, read: int
) -> None:
    c = campaign(api_client, manager)
    if role == "non_member":
        other = make_user(domain_name="other.example")
        caller = ApiUser(**{**other.__dict__, "domain_id": manager.domain_id})
    else:
        caller = make_user(domain_name=manager.domain_name, role=role)
    body = {"destination_url": "https://x.example/", "utm_source": "a", "utm_medium": "b"}
    assert (
        api_client.post(
            f"/api/v1/campaigns/{c['id']}/links", json=body, headers=caller.headers
        ).status_code
        == write
    )
    assert (
        api_client.get(f"/api/v1/campaigns/{c['id']}/links", headers=caller.headers).status_code
        == read
    )


def test_links_of_another_domain_are_404(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    c = campaign(api_client, manager)
    link = api_client.post(
        f"/api/v1/campaigns/{c['id']}/links",
        json={"destination_url": "https://x.example/", "utm_source": "a", "utm_medium": "b"},
        headers=manager.headers,
    ).json()
    stranger = make_user(domain_name="other.example")
    for method, url in (
        ("GET", f"/api/v1/links/{link['id']}"),
        ("PATCH", f"/api/v1/links/{link['id']}"),
        ("DELETE", f"/api/v1/links/{link['id']}"),
        ("GET", f"/api/v1/links/{link['id']}/analytics"),
        ("POST", f"/api/v1/campaigns/{c['id']}/links"),
    ):
        response = api_client.request(
            method,
            url,
            json={
                "utm_term": "x",
                "destination_url": "https://x.example/",
                "utm_source": "a",
                "utm_medium": "b",
            },
            headers=stranger.headers,
        )
        assert response.status_code == 404, (method, url)


def test_bulk_update_and_delete_apply_to_the_domains_live_links_with_a_result_per_id(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    c = campaign(api_client, manager)
    made = api_client.post(
        f"/api/v1/campaigns/{c['id']}/links/bulk",
        json={
            "destination_url": "https://x.example/",
            "sources": ["a", "b", "c"],
            "mediums": ["m"],
        },
        headers=manager.headers,
    ).json()
    ids = [lk["id"] for lk in made]
    stranger = make_user(domain_name="other.example")
    foreign = api_client.post(
        f"/api/v1/campaigns/{campaign(api_client, stranger)['id']}/links",
        json={"destination_url": "https://s.example/", "utm_source": "s", "utm_medium": "m"},
        headers=stranger.headers,
    ).json()["id"]
    # Update two of ours and try a foreign one: ours change, the foreign one is not_found
    body = {
        "action": "update",
        "ids": [ids[0], foreign, ids[1]],
        "update": {"destination_url": "https://new.example/p", "utm_term": "t"},
    }
    response = api_client.post("/api/v1/links/bulk", json=body, headers=manager.headers)
    assert response.status_code == 200, response.text
    out = response.json()
    assert (out["succeeded"], out["failed"]) == (2, 1)
    assert [(r["id"], r["ok"], r["code"]) for r in out["results"]] == [
        (ids[0], True, None), (foreign, False, "not_found"), (ids[1], True, None)
    ]  # fmt: skip
    for link_id in ids[:2]:
        link = api_client.get(f"/api/v1/links/{link_id}", headers=manager.headers).json()
        assert link["full_url"].startswith("https://new.example/p?utm_source=")
        assert link["full_url"].endswith("&utm_term=t")
    untouched = api_client.get(f"/api/v1/links/{ids[2]}", headers=manager.headers).json()
    assert untouched["destination_url"] == "https://x.example/"
    theirs = api_client.get(f"/api/v1/links/{foreign}", headers=stranger.headers).json()
    assert theirs["destination_url"] == "https://s.example/"
    # Delete: the links stop being live; deleting again reports not_found
    delete = {"action": "delete", "ids": ids[1:]}
    deleted = api_client.post("/api/v1/links/bulk", json=delete, headers=manager.headers).json()
    assert deleted["succeeded"] == 2
    assert api_client.get(f"/api/v1/links/{ids[2]}", headers=manager.headers).status_code == 404
    again = api_client.post("/api/v1/links/bulk", json=delete, headers=manager.headers).json()
    assert (again["succeeded"], again["failed"]) == (0, 2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "update", "ids": ["5f0c1d2e-8a7b-4c3d-9e8f-1a2b3c4d5e6f"]}, None),
        ({"action": "update", "ids": [], "update": {"utm_term": "x"}}, "ids"),
        ({"action": "move", "ids": ["5f0c1d2e-8a7b-4c3d-9e8f-1a2b3c4d5e6f"]}, "action"),
        (
            {
                "action": "update",
                "ids": ["5f0c1d2e-8a7b-4c3d-9e8f-1a2b3c4d5e6f"],
                "update": {"utm_source": None},
            },
            "utm_source",
        ),
    ],
)
def test_bulk_link_changes_refuse_bad_bodies(
    api_client: TestClient, manager: ApiUser, body: dict[str, Any], field: str | None
) -> None:
    response = api_client.post("/api/v1/links/bulk", json=body, headers=manager.headers)
    assert response.status_code == 422, response.text
    if field:
        assert any(field in e["field"] for e in response.json()["errors"])


def test_viewers_cannot_change_links_in_bulk(
    api_client: TestClient, make_user: MakeUser, manager: ApiUser
) -> None:
    viewer = make_user(domain_name=manager.domain_name, role="viewer")
    body = {"action": "delete", "ids": ["5f0c1d2e-8a7b-4c3d-9e8f-1a2b3c4d5e6f"]}
    assert (
        api_client.post("/api/v1/links/bulk", json=body, headers=viewer.headers).status_code == 403
    )
