"""Console pages beyond jobs: overview charts, leads (filters, provenance, bulk, export),
schedules, data sources; each scoped to the signed-in user's domain and role."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import PASSWORD, ApiUser, MakeUser
from tests.api.helpers import SECRET, connectors_registry
from tests.api.test_console import _csrf, sign_in
from tests.factories import make_source

__all__ = ["connectors_registry"]

LEAD_ROW = re.compile(r'data-lead-id="([0-9a-f-]{36})"')


@pytest.fixture
def finished_job(
    engine: Engine, make_user: MakeUser, redis_url: str
) -> Iterator[tuple[ApiUser, uuid.UUID, uuid.UUID]]:
    """A manager whose domain has a synthetic source and one completed job of 30 leads."""
    from runtime.settings import get_settings
    from tests.api.helpers import create_job
    from workers.runner import Runner

    user = make_user()
    source = make_source(engine, user.domain_id, "synthetic", {"total": 30, "page_size": 10})
    job = create_job(engine, user.domain_id, source, moves=("start",))
    client = redis.Redis.from_url(redis_url)
    try:
        assert Runner(engine, get_settings(), client, threading.Event()).run(job) == "completed"
        yield user, source, job
    finally:
        client.close()


def test_overview_charts_the_domains_leads_and_jobs(
    api_client: TestClient, finished_job: tuple[ApiUser, uuid.UUID, uuid.UUID]
) -> None:
    user, _source, _job = finished_job
    sign_in(api_client, email=user.email, password=PASSWORD)
    page = api_client.get("/console")
    assert page.status_code == 200
    data = json.loads(re.search(r'id="chart-data">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert len(data["days"]) == 30
    assert sum(data["leads"]["synthetic source"]) == 30
    assert "30 leads in the window" in page.text
    completed = re.search(
        r'status=completed">completed</a></th>\s*<td class="num">(\d+)', page.text
    )
    assert completed and completed.group(1) == "1"


def test_leads_page_filters_pages_and_shows_provenance(
    api_client: TestClient, finished_job: tuple[ApiUser, uuid.UUID, uuid.UUID]
) -> None:
    user, _source, job = finished_job
    sign_in(api_client, email=user.email, password=PASSWORD)
    page = api_client.get("/console/leads")
    ids = LEAD_ROW.findall(page.text)
    assert len(ids) == 30 and f'href="/console/jobs/{job}"' in page.text
    found = api_client.get("/console/leads", params={"q": "person7."})
    assert LEAD_ROW.findall(found.text) and len(LEAD_ROW.findall(found.text)) < 30
    export = api_client.get("/console/leads/export", params={"q": "person7."})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert len(export.text.strip().splitlines()) == 1 + len(LEAD_ROW.findall(found.text))
    # Bulk: a manager sets the status of two leads
    answer = api_client.post(
        "/console/leads/bulk",
        data={"csrf_token": _csrf(page.text), "ids": ids[:2], "action": "update",
              "status": "contacted"},
    )  # fmt: skip
    assert answer.status_code == 200 and "2 done, 0 refused" in answer.text
    contacted = api_client.get("/console/leads", params={"status": "contacted"})
    assert sorted(LEAD_ROW.findall(contacted.text)) == sorted(ids[:2])
    # the campaign filter: one lead put in a campaign, the form offers it and keeps the choice
    campaign = api_client.post(
        "/api/v1/campaigns", json={"name": "Spring outreach"}, headers=user.headers
    ).json()["id"]
    moved = api_client.patch(
        f"/api/v1/leads/{ids[0]}", json={"campaign_id": campaign}, headers=user.headers
    )
    assert moved.status_code == 200, moved.text
    in_campaign = api_client.get("/console/leads", params={"campaign_id": campaign})
    assert LEAD_ROW.findall(in_campaign.text) == [ids[0]]
    assert f'<option value="{campaign}" selected>Spring outreach</option>' in in_campaign.text


def test_a_viewer_sees_leads_and_schedules_without_actions(
    api_client: TestClient,
    make_user: MakeUser,
    finished_job: tuple[ApiUser, uuid.UUID, uuid.UUID],
) -> None:
    manager, source, _job = finished_job
    schedule = api_client.post(
        "/api/v1/schedules",
        json={"data_source_id": str(source), "cron": "0 9 * * 1", "timezone": "Europe/Berlin"},
        headers=manager.headers,
    )
    assert schedule.status_code == 201, schedule.text
    viewer = make_user(domain_name=manager.domain_name, role="viewer")
    sign_in(api_client, email=viewer.email, password=PASSWORD)
    for path in ("/console/leads", "/console/schedules", "/console/sources", "/console"):
        page = api_client.get(path)
        assert page.status_code == 200, path
        assert "data-action=" not in page.text.replace('data-action="sign-out"', ""), path
    schedules = api_client.get("/console/schedules").text
    assert "Europe/Berlin" in schedules and schedule.json()["id"] in schedules
    page = api_client.get("/console/leads")
    refused = api_client.post(
        "/console/leads/bulk",
        data={"csrf_token": _csrf(page.text), "ids": LEAD_ROW.findall(page.text)[:1],
              "action": "update", "status": "contacted"},
    )  # fmt: skip
    assert refused.status_code == 403


def test_manager_disables_a_schedule(
    api_client: TestClient, finished_job: tuple[ApiUser, uuid.UUID, uuid.UUID]
) -> None:
    manager, source, _job = finished_job
    made = api_client.post(
        "/api/v1/schedules",
        json={"data_source_id": str(source), "interval_seconds": 3600},
        headers=manager.headers,
    ).json()
    sign_in(api_client, email=manager.email, password=PASSWORD)
    page = api_client.get("/console/schedules")
    assert f'data-schedule-id="{made["id"]}" data-enabled="true"' in page.text
    answer = api_client.post(
        f"/console/schedules/{made['id']}/disable", data={"csrf_token": _csrf(page.text)}
    )
    assert answer.status_code == 200
    assert f'data-schedule-id="{made["id"]}" data-enabled="false"' in answer.text
    got = api_client.get(f"/api/v1/schedules/{made['id']}", headers=manager.headers)
    assert got.json()["enabled"] is False


def test_sources_page_shows_health_and_tests_the_connection(
    api_client: TestClient, finished_job: tuple[ApiUser, uuid.UUID, uuid.UUID]
) -> None:
    manager, source, _job = finished_job
    sign_in(api_client, email=manager.email, password=PASSWORD)
    page = api_client.get("/console/sources")
    assert f'data-source-id="{source}"' in page.text
    check = api_client.post(
        f"/console/sources/{source}/test",
        data={"csrf_token": _csrf(page.text)},
        headers={"HX-Request": "true"},
    )
    assert check.status_code == 200 and 'data-check-ok="true"' in check.text
    assert "person0.s@" in check.text  # a sample lead


@pytest.mark.usefixtures("connectors_registry")
def test_source_forms_from_the_config_schema_keep_secrets_write_only(
    api_client: TestClient, make_user: MakeUser
) -> None:
    manager = make_user()
    sign_in(api_client, email=manager.email, password=PASSWORD)
    form = api_client.get("/console/sources/new", params={"type": "vault"})
    assert 'type="password" name="cfg.api_key"' in form.text  # a SecretStr field
    assert 'name="cfg.max_pages" type="number"' in form.text
    created = api_client.post(
        "/console/sources/new",
        data={"csrf_token": _csrf(form.text), "type": "vault", "name": "Vault",
              "cfg.api_key": SECRET, "cfg.region": "us", "cfg.max_pages": "3"},
        follow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 303, created.text
    source_id = created.headers["location"].rsplit("source-", 1)[1]
    api = api_client.get(f"/api/v1/data-sources/{source_id}", headers=manager.headers).json()
    assert api["config"]["region"] == "us" and api["config"]["max_pages"] == 3
    assert "api_key" in api["secrets_set"]
    # The edit form never shows the secret; saving with it empty keeps it
    edit = api_client.get(f"/console/sources/{source_id}/edit")
    assert SECRET not in edit.text and "stored — leave empty to keep" in edit.text
    saved = api_client.post(
        f"/console/sources/{source_id}/edit",
        data={"csrf_token": _csrf(edit.text), "name": "Vault 2", "cfg.region": "eu",
              "cfg.max_pages": "3"},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303, saved.text
    api = api_client.get(f"/api/v1/data-sources/{source_id}", headers=manager.headers).json()
    assert api["name"] == "Vault 2" and api["config"]["region"] == "eu"
    assert "api_key" in api["secrets_set"]
    # A value the connector refuses comes back as the API's 422, naming the field
    bad = api_client.post(
        f"/console/sources/{source_id}/edit",
        data={"csrf_token": _csrf(edit.text), "name": "Vault 2", "cfg.max_pages": "0"},
    )
    assert bad.status_code == 422 and "max_pages" in bad.text
