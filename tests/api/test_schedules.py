"""Schedules: validated timing (cron + time zone, or interval), computed next run, NOTIFY on every
change, roles, and run-now."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from api import job_moves
from models import schedule_timing
from models.jobs import Job
from models.schedules import Schedule
from scheduler.config import SchedulerConfig
from scheduler.loop import Scheduler
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import (
    connectors_registry,  # noqa: F401  (fixture)
    create_source,
    field_names,
)

pytestmark = pytest.mark.usefixtures("connectors_registry")

BASE = "/api/v1/schedules"


@pytest.fixture
def manager(make_user: MakeUser) -> ApiUser:
    return make_user()


@pytest.fixture
def source(api_client: TestClient, manager: ApiUser) -> dict[str, Any]:
    return create_source(api_client, manager)


@pytest.fixture
def schedule_notices(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection listening on `schedules`, as the scheduler does."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("LISTEN schedules")
        yield conn


def _next_notice(conn: psycopg.Connection[Any]) -> str:
    notices = list(conn.notifies(timeout=5, stop_after=1))
    assert notices, "no NOTIFY schedules arrived"
    return notices[0].payload


#: Friday 2026-12-04 17:00 Paris: the day the API's 0 = Monday reading showed a Saturday slot
FRIDAY = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Pin the clock every schedule computes its next slots from."""

    def pin(now: datetime) -> None:
        monkeypatch.setattr(schedule_timing, "utc_now", lambda: now)

    return pin


def test_cron_schedule_in_a_time_zone(
    api_client: TestClient,
    manager: ApiUser,
    source: dict[str, Any],
    schedule_notices: psycopg.Connection[Any],
    pinned_clock: Callable[[datetime], None],
) -> None:
    pinned_clock(FRIDAY)
    response = api_client.post(
        BASE,
        json={
            "name": "mornings",
            "data_source_id": source["id"],
            "cron": "30 9 * * 1-5",
            "timezone": "Europe/Paris",
            "jitter_seconds": 60,
            "params": {"limit": 20},
            "overlap": "queue",
        },
        headers=manager.headers,
    )
    assert response.status_code == 201, response.text
    schedule = response.json()
    assert _next_notice(schedule_notices) == schedule["id"]
    assert schedule["cron"] == "30 9 * * 1-5" and schedule["interval_seconds"] is None
    assert schedule["params"] == {"limit": 20} and schedule["overlap"] == "queue"
    assert schedule["enabled"] is True and schedule["jitter_seconds"] == 60
    # Then the next slot is Monday 09:30 Paris (un-jittered), never the Saturday after a Friday
    paris = ZoneInfo("Europe/Paris")
    next_run = datetime.fromisoformat(schedule["next_run_at"])
    assert next_run == datetime(2026, 12, 7, 9, 30, tzinfo=paris)
    assert schedule["description"] == "At 09:30, Monday through Friday (Europe/Paris)"
    upcoming = [datetime.fromisoformat(t).astimezone(paris) for t in schedule["next_fire_times"]]
    assert [t.date().isoformat() for t in upcoming] == [
        "2026-12-07", "2026-12-08", "2026-12-09", "2026-12-10", "2026-12-11",
    ]  # fmt: skip
    assert {(t.hour, t.minute) for t in upcoming} == {(9, 30)}
    fetched = api_client.get(f"{BASE}/{schedule['id']}", headers=manager.headers)
    assert fetched.json() == schedule


@pytest.mark.parametrize(
    ("cron", "expected_day"),
    [("0 9 * * 1", 7), ("0 9 * * mon", 7), ("0 9 * * 0", 6), ("0 9 * * 7", 6), ("0 9 * * sun", 6)],
)
def test_the_api_and_the_scheduler_read_cron_weekdays_alike(
    api_client: TestClient,
    manager: ApiUser,
    source: dict[str, Any],
    engine: Engine,
    pinned_clock: Callable[[datetime], None],
    cron: str,
    expected_day: int,
) -> None:
    # Given Friday 2026-12-04 and a weekly schedule in Berlin (crontab: 0 and 7 are Sunday)
    pinned_clock(FRIDAY)
    response = api_client.post(
        BASE,
        json={"data_source_id": source["id"], "cron": cron, "timezone": "Europe/Berlin"},
        headers=manager.headers,
    )
    assert response.status_code == 201, response.text
    # Then the API's next run is that weekday at 09:00 Berlin
    berlin = ZoneInfo("Europe/Berlin")
    expected = datetime(2026, 12, expected_day, 9, 0, tzinfo=berlin)
    assert datetime.fromisoformat(response.json()["next_run_at"]) == expected
    # And the scheduler, ticking at that instant, fires exactly that slot
    scheduler = Scheduler(
        engine, SchedulerConfig(misfire_grace_s=60), queued_grace_s=60, enqueue=lambda *_: None
    )
    scheduler.resync()
    schedule_id = uuid.UUID(response.json()["id"])
    assert scheduler.next_slot(schedule_id) == expected
    assert scheduler.tick(expected - timedelta(seconds=1)).fires == []
    [fire] = scheduler.tick(expected).fires
    assert fire.outcome == "fired" and fire.slot == expected


def test_interval_schedule_and_start_at(
    api_client: TestClient, manager: ApiUser, source: dict[str, Any]
) -> None:
    start = datetime.now(UTC) + timedelta(days=3)
    response = api_client.post(
        BASE,
        json={
            "data_source_id": source["id"],
            "interval_seconds": 3600,
            "start_at": start.isoformat(),
        },
        headers=manager.headers,
    )
    assert response.status_code == 201, response.text
    assert abs(datetime.fromisoformat(response.json()["next_run_at"]) - start) < timedelta(
        seconds=1
    )
    assert response.json()["timezone"] == "UTC" and response.json()["overlap"] == "skip"


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"cron": "0 * * * *", "interval_seconds": 60}, {"cron"}),
        ({}, {"interval_seconds"}),
        ({"cron": "61 * * * *"}, {"cron"}),
        ({"cron": "every day"}, {"cron"}),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus_Mons"}, {"timezone"}),
        ({"interval_seconds": 0}, {"interval_seconds"}),
        ({"interval_seconds": 60, "jitter_seconds": -1}, {"jitter_seconds"}),
        ({"interval_seconds": 60, "overlap": "sometimes"}, {"overlap"}),
        ({"interval_seconds": 60, "start_at": "2030-01-01T00:00:00"}, {"start_at"}),
        (
            {
                "interval_seconds": 60,
                "start_at": "2030-01-02T00:00:00Z",
                "end_at": "2030-01-01T00:00:00Z",
            },
            {"end_at"},
        ),
        ({"interval_seconds": 60, "params": {"limit": 1000}}, {"params.limit"}),
        ({"interval_seconds": 60, "data_source_id": str(uuid.uuid4())}, {"data_source_id"}),
        ({"interval_seconds": 60, "campaign_id": str(uuid.uuid4())}, {"campaign_id"}),
    ],
)
def test_create_validation_names_the_field(
    api_client: TestClient,
    manager: ApiUser,
    source: dict[str, Any],
    changes: dict[str, Any],
    fields: set[str],
) -> None:
    body = {"data_source_id": source["id"], **changes}
    response = api_client.post(BASE, json=body, headers=manager.headers)
    assert field_names(response) == fields
    assert api_client.get(BASE, headers=manager.headers).json()["items"] == []


def test_patch_merges_revalidates_and_notifies(
    api_client: TestClient,
    manager: ApiUser,
    source: dict[str, Any],
    schedule_notices: psycopg.Connection[Any],
) -> None:
    created = api_client.post(
        BASE, json={"data_source_id": source["id"], "cron": "0 6 * * *"}, headers=manager.headers
    ).json()
    assert _next_notice(schedule_notices) == created["id"]
    url = f"{BASE}/{created['id']}"

    switched = api_client.patch(
        url, json={"cron": None, "interval_seconds": 900}, headers=manager.headers
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["cron"] is None and switched.json()["interval_seconds"] == 900
    assert _next_notice(schedule_notices) == created["id"]

    disabled = api_client.patch(url, json={"enabled": False}, headers=manager.headers).json()
    assert disabled["enabled"] is False and disabled["next_run_at"] is None
    assert disabled["interval_seconds"] == 900  # untouched fields are kept
    assert _next_notice(schedule_notices) == created["id"]

    both = api_client.patch(url, json={"cron": "0 6 * * *"}, headers=manager.headers)
    assert field_names(both) == {"cron"}
    assert field_names(api_client.patch(url, json={"timezone": None}, headers=manager.headers)) == {
        "timezone"
    }
    assert field_names(
        api_client.patch(url, json={"params": {"bogus": 1}}, headers=manager.headers)
    ) == {"params.bogus"}
    assert api_client.get(url, headers=manager.headers).json() == disabled


def test_delete_notifies_and_forgets(
    api_client: TestClient,
    manager: ApiUser,
    source: dict[str, Any],
    schedule_notices: psycopg.Connection[Any],
) -> None:
    created = api_client.post(
        BASE, json={"data_source_id": source["id"], "interval_seconds": 60}, headers=manager.headers
    ).json()
    assert _next_notice(schedule_notices) == created["id"]
    url = f"{BASE}/{created['id']}"
    assert api_client.delete(url, headers=manager.headers).status_code == 204
    assert _next_notice(schedule_notices) == created["id"]
    assert api_client.get(url, headers=manager.headers).status_code == 404
    assert api_client.delete(url, headers=manager.headers).status_code == 404
    assert (
        api_client.patch(url, json={"enabled": False}, headers=manager.headers).status_code == 404
    )


def test_roles_and_run_now(
    api_client: TestClient,
    make_user: MakeUser,
    manager: ApiUser,
    source: dict[str, Any],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member = make_user(manager.domain_name, role="member")
    viewer = make_user(manager.domain_name, role="viewer")
    admin = make_user(manager.domain_name, role="admin")
    outsider = make_user()
    enqueued: list[str] = []
    monkeypatch.setattr(job_moves, "enqueue_job", lambda job_id, queue: enqueued.append(queue))
    body = {"data_source_id": source["id"], "interval_seconds": 60, "params": {"limit": 7}}

    assert api_client.post(BASE, json=body, headers=member.headers).status_code == 403
    assert api_client.post(BASE, json=body, headers=viewer.headers).status_code == 403
    created = api_client.post(BASE, json=body, headers=admin.headers)
    assert created.status_code == 201
    url = f"{BASE}/{created.json()['id']}"
    for user in (member, viewer):
        assert api_client.get(url, headers=user.headers).status_code == 200
        assert (
            api_client.patch(url, json={"enabled": False}, headers=user.headers).status_code == 403
        )
        assert api_client.delete(url, headers=user.headers).status_code == 403
    assert api_client.get(url, headers=outsider.headers).status_code == 404
    assert api_client.post(f"{url}/run-now", headers=viewer.headers).status_code == 403
    assert api_client.post(f"{url}/run-now", headers=outsider.headers).status_code == 404
    assert (
        api_client.post(f"{BASE}/{uuid.uuid4()}/run-now", headers=member.headers).status_code == 404
    )

    ran = api_client.post(f"{url}/run-now", headers=member.headers)
    assert ran.status_code == 201, ran.text
    job = ran.json()
    assert job["schedule_id"] == created.json()["id"] and job["status"] == "queued"
    assert job["params"] == {"limit": 7}
    assert enqueued == ["vault"]
    with Session(engine) as session:
        assert session.scalar(select(Job.created_by).where(Job.id == uuid.UUID(job["id"]))) == (
            member.user_id
        )
    listed = api_client.get(BASE, params={"data_source_id": source["id"]}, headers=viewer.headers)
    assert [s["id"] for s in listed.json()["items"]] == [created.json()["id"]]


def test_a_schedule_stored_with_syntax_this_reading_refuses_is_shown_not_a_500(
    api_client: TestClient, manager: ApiUser, source: dict[str, Any], engine: Engine
) -> None:
    # Given a row written before the one crontab reading, with APScheduler-only `last`
    created = api_client.post(
        BASE, json={"data_source_id": source["id"], "cron": "0 9 1 * *"}, headers=manager.headers
    )
    assert created.status_code == 201, created.text
    with Session(engine) as session, session.begin():
        session.execute(
            update(Schedule).where(Schedule.id == created.json()["id"]).values(cron="0 9 last * *")
        )
    # Then reading it says what is wrong instead of failing
    shown = api_client.get(f"{BASE}/{created.json()['id']}", headers=manager.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["description"].startswith("invalid schedule:")
    assert shown.json()["next_fire_times"] == []
    listed = api_client.get(BASE, headers=manager.headers)
    assert listed.status_code == 200
