"""Pause, resume and cancel through the API while a job pages through the Apollo emulator.

Every page costs the emulator's latency, so the job runs for several seconds and the API's
requests land mid-run. What is checked is what a user relies on:

* pause takes effect within one commit: between the `job.pause` and `job.settle` log lines at
  most one `page.committed` line, and the page counter moved by no more than that line carried;
* resume continues from the checkpoint: the job completes with exactly the emulator's matching
  people, every lead once, and the recorded pages chain checkpoint to checkpoint (none skipped,
  none committed twice);
* cancel ends the run `cancelled` within one page and keeps what was written;
* resuming a completed job is a 409 problem carrying `job_status: "completed"`.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.sandbox.apollo import ApolloEmulator
from tests.cli.conftest import LiveApi, Proc
from tests.e2e.conftest import ApiUser, read_all_logs, wait_for_job

pytestmark = pytest.mark.slow

API_KEY = "apollo-test-key"
FILTERS: dict[str, Any] = {"person_seniorities": ["director"]}
PER_PAGE = 20
LATENCY_MS = 250.0
EMULATOR = {"people": 3000, "seed": 7}
Job = dict[str, Any]


def matching_people(emu: ApolloEmulator) -> int:
    """What the provider says the search matches (asked over HTTP, like any client)."""
    response = httpx.post(
        f"{emu.url}/api/v1/mixed_people/api_search",
        headers={"x-api-key": API_KEY},
        json={**FILTERS, "page": 1, "per_page": 1},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    total = int(response.json()["total_entries"])
    assert total > 10 * PER_PAGE, "the search must span enough pages to pause in the middle"
    return total


def start_apollo_job(api: httpx.Client, emu: ApolloEmulator) -> str:
    source = api.post(
        "/data-sources",
        json={
            "type": "apollo",
            "name": "Apollo emulator",
            "config": {
                "api_key": API_KEY,
                "base_url": f"{emu.url}/api/v1",
                "search_hourly_limit": None,
            },
        },
    )
    assert source.status_code == 201, source.text
    assert source.json()["secrets_set"] == ["api_key"]
    job = api.post(
        "/jobs",
        json={
            "data_source_id": source.json()["id"],
            "params": {**FILTERS, "per_page": PER_PAGE},
            "start": True,
        },
    )
    assert job.status_code == 201, job.text
    return str(job.json()["id"])


def running_with_pages(job: Job, pages: int) -> bool:
    if job["status"] in ("completed", "failed", "cancelled"):
        raise AssertionError(f"the job ended before it could be interrupted: {job}")
    return bool(job["status"] == "running" and job["counters"]["pages"] >= pages)


def commits_between(lines: list[dict[str, Any]], first: str, last: str) -> list[dict[str, Any]]:
    """Fields of the `page.committed` lines after the first `first` line and before the next
    `last` line. One commit may hold several provider pages when the runner merged pages that
    were already fetched, so "within one page" means within one commit."""
    events = [line["event"] for line in lines]
    start = events.index(first)
    end = events.index(last, start)
    return [x["fields"] for x in lines[start:end] if x["event"] == "page.committed"]


def all_leads(api: httpx.Client) -> list[dict[str, Any]]:
    leads: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"page_size": 200}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/leads", params=params)
        assert page.status_code == 200, page.text
        leads.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return leads


def assert_problem(response: httpx.Response, status: int, job_status: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["job_status"] == job_status
    assert body["type"] and body["title"] and body["detail"]


@pytest.mark.parametrize("apollo_emulator", [EMULATOR], indirect=True)
def test_pause_and_resume_mid_run_within_one_page_then_complete_exactly_once(
    live_api: LiveApi, e2e_worker: Proc, new_user: ApiUser, apollo_emulator: ApolloEmulator
) -> None:
    api = new_user.client
    expected = matching_people(apollo_emulator)
    apollo_emulator.faults.latency_ms = LATENCY_MS
    job_id = start_apollo_job(api, apollo_emulator)
    wait_for_job(api, job_id, lambda j: running_with_pages(j, 2), "two committed pages")

    # Pause: accepted at once, effective after the page in flight
    paused_at = api.post(f"/jobs/{job_id}/pause")
    assert paused_at.status_code == 202, paused_at.text
    # `paused` already when the page in flight committed before the answer was read back
    assert paused_at.json()["status"] in ("pausing", "paused")
    pages_at_request = paused_at.json()["counters"]["pages"]
    paused = wait_for_job(api, job_id, lambda j: j["status"] == "paused", "paused", timeout=30)
    assert paused["pause_reason"] == "user"
    late = commits_between(read_all_logs(api, job_id), "job.pause", "job.settle")
    assert len(late) <= 1
    assert paused["counters"]["pages"] - pages_at_request <= sum(c["pages"] for c in late)
    assert paused["counters"]["inserted"] < expected  # it really stopped mid-run
    assert api.post(f"/jobs/{job_id}/pause").json()["job_status"] == "paused"

    # Resume: back in the queue, continues from the checkpoint, completes
    resumed = api.post(f"/jobs/{job_id}/resume")
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["status"] in ("queued", "running")
    done = wait_for_job(
        api, job_id, lambda j: j["status"] in ("completed", "failed"), "the end", timeout=120
    )
    assert done["status"] == "completed", done
    counters = done["counters"]
    assert counters["fetched"] == counters["inserted"] == expected
    assert counters["updated"] == counters["unchanged"] == counters["rejected"] == 0

    # every matching person is one lead, with one provenance row: no duplicates, none missing
    leads = all_leads(api)
    assert len(leads) == expected
    external_ids = [s["external_id"] for lead in leads for s in lead["sources"]]
    assert len(external_ids) == len(set(external_ids)) == expected
    assert {s["job_id"] for lead in leads for s in lead["sources"]} == {job_id}

    # the recorded history: two runs, and each page starts where the previous one ended
    lines = read_all_logs(api, job_id)
    assert [line["event"] for line in lines].count("job.started") == 2
    pages = [line["fields"] for line in lines if line["event"] == "page.committed"]
    assert sum(p["pages"] for p in pages) == counters["pages"]
    assert pages[0]["checkpoint_before"] is None
    assert [p["checkpoint_before"] for p in pages[1:]] == [p["checkpoint"] for p in pages[:-1]]
    assert sum(p["inserted"] for p in pages) == expected

    # resuming a job that is over is refused, naming its status
    assert_problem(api.post(f"/jobs/{job_id}/resume"), 409, "completed")
    assert api.get(f"/jobs/{job_id}").json()["status"] == "completed"


@pytest.mark.parametrize("apollo_emulator", [EMULATOR], indirect=True)
def test_cancel_mid_run_ends_it_cancelled_and_keeps_what_was_written(
    live_api: LiveApi, e2e_worker: Proc, new_user: ApiUser, apollo_emulator: ApolloEmulator
) -> None:
    api = new_user.client
    expected = matching_people(apollo_emulator)
    apollo_emulator.faults.latency_ms = LATENCY_MS
    job_id = start_apollo_job(api, apollo_emulator)
    wait_for_job(api, job_id, lambda j: running_with_pages(j, 2), "two committed pages")

    cancelled_at = api.post(f"/jobs/{job_id}/cancel")
    assert cancelled_at.status_code == 202, cancelled_at.text
    assert cancelled_at.json()["status"] in ("cancelling", "cancelled")
    pages_at_request = cancelled_at.json()["counters"]["pages"]
    done = wait_for_job(
        api,
        job_id,
        lambda j: j["status"] not in ("running", "cancelling"),
        "the cancel to settle",
        timeout=30,
    )
    assert done["status"] == "cancelled", done
    assert done["finished_at"] is not None and done["error"] is None
    late = commits_between(read_all_logs(api, job_id), "job.cancel", "job.settle")
    assert len(late) <= 1
    assert done["counters"]["pages"] - pages_at_request <= sum(c["pages"] for c in late)

    # what the committed pages wrote stays: as many leads as the counters say, short of all
    written = done["counters"]["inserted"]
    assert 2 * PER_PAGE <= written < expected
    assert done["counters"]["fetched"] == written
    total = api.get("/leads", params={"count": "true", "page_size": 1}).json()["total"]
    assert total == written

    # a cancelled job is over: it cannot be resumed or paused
    assert_problem(api.post(f"/jobs/{job_id}/resume"), 409, "cancelled")
    assert_problem(api.post(f"/jobs/{job_id}/pause"), 409, "cancelled")
