"""Analytics on a seeded data set, checked against numbers computed here independently;
empty ranges; time zones; the trigger-maintained campaign metrics and their NOTIFY."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.api.conftest import ApiUser, MakeUser

STATUSES = ("new", "contacted", "responded", "qualified", "rejected", "converted")
TZ = "America/New_York"


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user(domain_name="acme.com")


def seed(
    engine: Engine, domain_id: uuid.UUID, campaigns: list[str | None], n: int = 300
) -> list[dict[str, Any]]:
    """`n` leads spread over the last 20 days with random statuses, campaigns and qualifications."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        status = rng.choice(STATUSES)
        rows.append(
            {
                "id": uuid.uuid4(),
                "d": domain_id,
                "email": f"l{i}@seed.example",
                "status": status,
                "campaign": rng.choice(campaigns),
                "created": now - timedelta(minutes=rng.randrange(0, 20 * 24 * 60)),
                "q": rng.choice([None, 1, 2, 3, 4, 5]),
            }
        )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO leads (id, domain_id, email, status, campaign_id, created_at, "
                "qualification) "
                "VALUES (:id, :d, :email, :status, :campaign, :created, "
                "CASE WHEN CAST(:q AS int) IS NULL THEN NULL "
                "ELSE jsonb_build_object('score', CAST(:q AS int)) END)"
            ),
            rows,
        )
    return rows


def local_start(days: int, tz: str) -> tuple[datetime, datetime, list[date]]:
    zone = ZoneInfo(tz)
    today = datetime.now(zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    previous = datetime.combine(first - timedelta(days=days), datetime.min.time(), tzinfo=zone)
    return start, previous, [first + timedelta(days=i) for i in range(days)]


def test_overview_matches_independent_counts(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    campaigns = [
        api_client.post(
            "/api/v1/campaigns", json={"name": f"C{i}"}, headers=manager.headers
        ).json()["id"]
        for i in range(3)
    ]
    rows = seed(engine, manager.domain_id, [*campaigns, None])
    start, previous, _ = local_start(7, TZ)
    body = api_client.get(
        "/api/v1/analytics/overview", params={"range": "7d", "tz": TZ}, headers=manager.headers
    ).json()
    cur = [r for r in rows if r["created"] >= start]
    prev = [r for r in rows if previous <= r["created"] < start]
    qualified = sum(r["status"] in ("qualified", "converted") for r in cur)
    converted = sum(r["status"] == "converted" for r in cur)
    assert body["leads_total"] == len(rows)
    assert (body["new_leads"], body["qualified"], body["converted"]) == (
        len(cur),
        qualified,
        converted,
    )
    assert body["qualification_rate"] == round(qualified / len(cur), 4)
    responded = sum(r["status"] in ("responded", "qualified", "rejected", "converted") for r in cur)
    assert body["response_rate"] == round(responded / len(cur), 4)
    assert body["change"]["response_rate"]["current"] == body["response_rate"]
    assert body["conversion_rate"] == round(converted / len(cur), 4)
    change = body["change"]["new_leads"]
    assert (change["current"], change["previous"]) == (len(cur), len(prev))
    assert change["change_pct"] == round((len(cur) - len(prev)) / len(prev) * 100, 2)
    assert change_of(body, "leads_total") == (len(rows), len(rows) - len(cur))
    by_campaign = Counter(r["campaign"] for r in cur if r["campaign"])
    assert [(c["id"], c["leads"]) for c in body["top_campaigns"]] == sorted(
        by_campaign.items(), key=lambda kv: (-kv[1], campaigns.index(kv[0]))
    )
    assert datetime.fromisoformat(body["period"]["start"]) == start


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("leads", lambda c: c["leads"]),
        ("converted", lambda c: c["converted"]),
        ("response_rate", lambda c: c["responded"] / c["leads"]),
        ("qualification_rate", lambda c: c["qualified"] / c["leads"]),
    ],
)
def test_top_campaigns_rank_by_the_metric_asked_for(
    api_client: TestClient, manager: ApiUser, engine: Engine, metric: str, value: Any
) -> None:
    names = [f"T{i}" for i in range(6)]
    campaigns = [
        api_client.post("/api/v1/campaigns", json={"name": n}, headers=manager.headers).json()["id"]
        for n in names
    ]
    rows = seed(engine, manager.domain_id, [*campaigns, None])
    start, _, _ = local_start(30, TZ)
    expected: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["campaign"] and r["created"] >= start:
            c = expected.setdefault(r["campaign"], Counter())
            c["leads"] += 1
            c["responded"] += r["status"] in ("responded", "qualified", "rejected", "converted")
            c["qualified"] += r["status"] in ("qualified", "converted")
            c["converted"] += r["status"] == "converted"
    ranked = sorted(
        expected,
        key=lambda k: (-value(expected[k]), -expected[k]["leads"], names[campaigns.index(k)]),
    )
    params = {"range": "30d", "tz": TZ, "metric": metric, "limit": 4}
    response = api_client.get(
        "/api/v1/analytics/top-campaigns", params=params, headers=manager.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metric"] == metric
    assert [c["id"] for c in body["items"]] == ranked[:4]
    first = body["items"][0]
    counts = expected[first["id"]]
    assert (first["leads"], first["responded"], first["qualified"], first["converted"]) == (
        counts["leads"], counts["responded"], counts["qualified"], counts["converted"]
    )  # fmt: skip
    assert first["response_rate"] == round(counts["responded"] / counts["leads"], 4)


def test_top_campaigns_refuses_an_unknown_metric_or_limit(
    api_client: TestClient, manager: ApiUser
) -> None:
    url = "/api/v1/analytics/top-campaigns"
    for params, field in (({"metric": "clicks"}, "metric"), ({"limit": 0}, "limit")):
        response = api_client.get(url, params=params, headers=manager.headers)
        assert response.status_code == 422, response.text
        assert field in {e["field"] for e in response.json()["errors"]}


def change_of(body: dict[str, Any], name: str) -> tuple[Any, Any]:
    return body["change"][name]["current"], body["change"][name]["previous"]


@pytest.mark.parametrize("tz", ["UTC", TZ, "Asia/Kolkata"])
def test_leads_timeline_by_local_day(
    api_client: TestClient, manager: ApiUser, engine: Engine, tz: str
) -> None:
    rows = seed(engine, manager.domain_id, [None])
    start, _, days = local_start(7, tz)
    body = api_client.get(
        "/api/v1/analytics/leads",
        params={"range": "7d", "group_by": "day", "tz": tz},
        headers=manager.headers,
    ).json()
    zone = ZoneInfo(tz)
    expected = Counter(r["created"].astimezone(zone).date() for r in rows if r["created"] >= start)
    assert [(b["bucket"], b["leads"]) for b in body["timeline"]] == [
        (d.isoformat(), expected[d]) for d in days
    ]
    assert body["leads"] == sum(expected.values())
    cur = [r for r in rows if r["created"] >= start]
    assert body["status_distribution"] == {s: sum(r["status"] == s for r in cur) for s in STATUSES}
    q = Counter(str(r["q"]) if r["q"] else "unqualified" for r in cur)
    assert body["qualification_distribution"] == {
        k: q[k] for k in ("1", "2", "3", "4", "5", "unqualified")
    }


def test_campaign_analytics_week_buckets_rates_and_maintained_totals(
    api_client: TestClient, manager: ApiUser, engine: Engine
) -> None:
    c = api_client.post("/api/v1/campaigns", json={"name": "W"}, headers=manager.headers).json()[
        "id"
    ]
    rows = seed(engine, manager.domain_id, [c, None])
    start, _, _ = local_start(30, TZ)
    body = api_client.get(
        f"/api/v1/analytics/campaigns/{c}",
        params={"range": "30d", "group_by": "week", "tz": TZ},
        headers=manager.headers,
    ).json()
    mine = [r for r in rows if r["campaign"] == c]
    assert body["totals"] == {
        "leads": len(mine),
        **{s: sum(r["status"] == s for r in mine) for s in STATUSES},
    }
    cur = [r for r in mine if r["created"] >= start]
    zone = ZoneInfo(TZ)
    weeks = Counter(
        (d := r["created"].astimezone(zone).date()) - timedelta(days=d.weekday()) for r in cur
    )
    assert {b["bucket"]: b["leads"] for b in body["timeline"] if b["leads"]} == {
        k.isoformat(): v for k, v in weeks.items()
    }
    assert all(date.fromisoformat(b["bucket"]).weekday() == 0 for b in body["timeline"])
    responded = sum(r["status"] in ("responded", "qualified", "rejected", "converted") for r in cur)
    assert body["rates"]["response_rate"] == round(responded / len(cur), 4)
    assert body["link_clicks"] == 0


def test_empty_ranges_answer_zeros_and_null_rates(api_client: TestClient, manager: ApiUser) -> None:
    body = api_client.get(
        "/api/v1/analytics/overview", params={"range": "1y"}, headers=manager.headers
    ).json()
    assert (body["leads_total"], body["new_leads"], body["jobs_run"]) == (0, 0, 0)
    assert body["qualification_rate"] is None and body["change"]["new_leads"]["change_pct"] is None
    leads = api_client.get(
        "/api/v1/analytics/leads",
        params={"range": "90d", "group_by": "month"},
        headers=manager.headers,
    ).json()
    assert leads["leads"] == 0 and all(b["leads"] == 0 for b in leads["timeline"])
    assert 3 <= len(leads["timeline"]) <= 4
    bad = api_client.get(
        "/api/v1/analytics/overview", params={"tz": "Mars/Olympus"}, headers=manager.headers
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "tz"
    assert (
        api_client.get(
            "/api/v1/analytics/overview", params={"range": "2d"}, headers=manager.headers
        ).status_code
        == 422
    )


def test_member_analytics_cover_their_leads_only(
    api_client: TestClient, manager: ApiUser, make_user: MakeUser, engine: Engine
) -> None:
    member = make_user(domain_name=manager.domain_name, role="member")
    seed(engine, manager.domain_id, [None], n=20)
    api_client.post("/api/v1/leads", json={"email": "mine@x.example"}, headers=member.headers)
    assert (
        api_client.get("/api/v1/analytics/overview", headers=member.headers).json()["leads_total"]
        == 1
    )
    assert (
        api_client.get("/api/v1/analytics/overview", headers=manager.headers).json()["leads_total"]
        == 21
    )


def test_campaign_metrics_follow_every_write_and_notify(
    api_client: TestClient, manager: ApiUser, engine: Engine, db_url: str
) -> None:
    c = api_client.post("/api/v1/campaigns", json={"name": "N"}, headers=manager.headers).json()[
        "id"
    ]
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN campaign_metrics")
        lead = api_client.post(
            "/api/v1/leads",
            json={"email": "n@x.example", "campaign_id": c},
            headers=manager.headers,
        ).json()
        assert [n.payload for n in listener.notifies(timeout=5, stop_after=1)] == [c]
        api_client.patch(
            f"/api/v1/leads/{lead['id']}", json={"status": "contacted"}, headers=manager.headers
        )
        assert [n.payload for n in listener.notifies(timeout=5, stop_after=1)] == [c]
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT leads, new, contacted FROM campaign_metrics WHERE campaign_id = :c"),
            {"c": c},
        ).one()
    assert tuple(row) == (1, 0, 1)
    api_client.delete(f"/api/v1/leads/{lead['id']}", headers=manager.headers)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT leads, contacted FROM campaign_metrics")).one() == (0, 0)


def test_deleting_a_domain_or_campaign_is_not_blocked_by_metrics(
    manager: ApiUser, engine: Engine, api_client: TestClient
) -> None:
    c = api_client.post("/api/v1/campaigns", json={"name": "D"}, headers=manager.headers).json()[
        "id"
    ]
    seed(engine, manager.domain_id, [c], n=10)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM campaigns WHERE id = :c"), {"c": c})
        assert (
            conn.execute(text("SELECT count(*) FROM leads WHERE campaign_id IS NULL")).scalar_one()
            == 10
        )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM domains WHERE id = :d"), {"d": manager.domain_id})
        assert conn.execute(text("SELECT count(*) FROM leads")).scalar_one() == 0
