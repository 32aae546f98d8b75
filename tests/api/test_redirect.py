"""The public redirect: 302 to full_url, the click recorded after the response, no raw IP."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from models.links_repo import clean_country, ua_family
from tests.api.conftest import ApiUser, MakeUser

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


@pytest.fixture
def link(api_client: TestClient, make_user: MakeUser) -> dict[str, Any]:
    manager: ApiUser = make_user(domain_name="acme.com")
    c = api_client.post("/api/v1/campaigns", json={"name": "R"}, headers=manager.headers).json()
    body: dict[str, Any] = api_client.post(
        f"/api/v1/campaigns/{c['id']}/links",
        json={
            "destination_url": "https://shop.example/?a=1#f",
            "utm_source": "li",
            "utm_medium": "social",
        },
        headers=manager.headers,
    ).json()
    body["headers"] = manager.headers
    return body


def test_redirect_is_public_302_and_records_the_click(
    api_client: TestClient, link: dict[str, Any], engine: Engine
) -> None:
    response = api_client.get(
        f"/r/{link['short_code']}",
        headers={
            "Referer": "https://news.example/post",
            "User-Agent": CHROME,
            "CF-IPCountry": "no",
        },
        follow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["location"] == link["full_url"]
    assert response.headers["cache-control"] == "no-store"
    api_client.get(
        f"/r/{link['short_code']}",
        headers={"User-Agent": FIREFOX, "CF-IPCountry": "XX"},
        follow_redirects=False,
    )
    # TestClient runs background tasks before returning: the clicks are committed now
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT referrer, ua_family, country FROM link_clicks ORDER BY id")
        ).all()
        clicks: int = conn.execute(text("SELECT clicks FROM links")).scalar_one()
        columns: set[str] = {
            str(c)
            for (c,) in conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'link_clicks'"
                )
            )
        }
    assert [tuple(r) for r in rows] == [
        ("https://news.example/post", "Chrome", "NO"),
        (None, "Firefox", None),
    ]
    assert clicks == 2
    assert not any("ip" in c.split("_") or c == "user_agent" for c in columns)
    stats = api_client.get(
        f"/api/v1/links/{link['id']}/analytics", params={"range": "7d"}, headers=link["headers"]
    ).json()
    assert (stats["clicks_total"], stats["clicks"]) == (2, 2)
    assert stats["timeline"][-1]["clicks"] == 2 and len(stats["timeline"]) == 7
    assert {(b["value"], b["count"]) for b in stats["browsers"]} == {("Chrome", 1), ("Firefox", 1)}
    assert stats["countries"] == [{"value": "NO", "count": 1}, {"value": None, "count": 1}]


def test_unknown_and_deleted_codes_are_404(api_client: TestClient, link: dict[str, Any]) -> None:
    assert api_client.get("/r/nope1234", follow_redirects=False).status_code == 404
    api_client.delete(f"/api/v1/links/{link['id']}", headers=link["headers"])
    assert api_client.get(f"/r/{link['short_code']}", follow_redirects=False).status_code == 404


def test_click_notifies_campaign_metrics(
    api_client: TestClient, link: dict[str, Any], db_url: str
) -> None:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN campaign_metrics")
        api_client.get(f"/r/{link['short_code']}", follow_redirects=False)
        payloads = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert payloads == [link["campaign_id"]]


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        (CHROME, "Chrome"),
        (FIREFOX, "Firefox"),
        ("Mozilla/5.0 (Macintosh) AppleWebKit/605 Version/17 Safari/605", "Safari"),
        (CHROME + " Edg/120.0", "Edge"),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "Bot"),
        ("curl/8.0", "curl"),
        ("", None),
        ("weird", "Other"),
    ],
)
def test_ua_family(agent: str, family: str | None) -> None:
    assert ua_family(agent) == family


def test_clean_country() -> None:
    assert [clean_country(v) for v in ("de", " US ", "XX", "T1", "USA", None, "1a")] == [
        "DE",
        "US",
        None,
        None,
        None,
        None,
        None,
    ]
