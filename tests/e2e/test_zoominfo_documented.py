"""ZoomInfo jobs through the API and a worker, against the emulator answering as ZoomInfo
documents (`maxResults` = matches, `totalResults` = records on the page).

What a user relies on: an 800-contact search whose JWT runs out mid-job (1.5 s tokens) yields
800 leads, and a 2,500-contact search, over the 1,000-record window, yields all 2,500 through
partitioning; both jobs end `completed` with nothing missed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.sandbox.zoominfo import ZoomInfoEmulator
from tests.cli.conftest import LiveApi, Proc
from tests.e2e.conftest import ApiUser, read_all_logs, wait_for_job

pytestmark = pytest.mark.slow


@pytest.fixture
def zoominfo_worker(live_env: dict[str, str]) -> Iterator[Proc]:
    argv = [sys.executable, "-m", "workers", "--queues", "zoominfo", "--threads", "2"]
    proc = Proc(argv, live_env)
    try:
        proc.wait_for("worker.ready")
        yield proc
    finally:
        proc.stop()


def run_job(api: httpx.Client, emu: ZoomInfoEmulator, name: str) -> dict[str, Any]:
    source = api.post(
        "/data-sources",
        json={
            "type": "zoominfo",
            "name": name,
            "config": {
                "base_url": emu.url,
                "username": "zoominfo-user",
                "password": "zoominfo-pass",
            },
        },
    )
    assert source.status_code == 201, source.text
    job = api.post(
        "/jobs",
        json={"data_source_id": source.json()["id"], "params": {"rpp": 100}, "start": True},
    )
    assert job.status_code == 201, job.text
    return wait_for_job(
        api,
        str(job.json()["id"]),
        lambda j: j["status"] in ("completed", "failed"),
        "the end",
        timeout=180,
    )


@pytest.mark.parametrize(
    "zoominfo_emulator",
    [{"people": 800, "token_ttl_s": 1.5, "latency_ms": 200.0}],
    indirect=True,
)
def test_documented_zoominfo_jobs_yield_every_contact(
    live_api: LiveApi,
    zoominfo_worker: Proc,
    new_user: ApiUser,
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    api, emu = new_user.client, zoominfo_emulator
    # Given 800 contacts, JWTs that live 1.5 s and 200 ms a request: the job outlives its token
    done = run_job(api, emu, "ZoomInfo 800")
    assert done["status"] == "completed", done
    assert done["counters"]["fetched"] == done["counters"]["inserted"] == 800
    assert emu.tokens_issued >= 2
    assert not done.get("warnings")
    # Given 2,500 contacts: over the 1,000-record window, so the search is partitioned
    emu.faults.latency_ms = 0.0
    emu.dataset.size = 2_500
    done = run_job(api, emu, "ZoomInfo 2500")
    assert done["status"] == "completed", done
    assert done["counters"]["fetched"] == 2_500
    assert done["counters"]["inserted"] == 2_500 - 800  # the first 800 are already leads
    assert done["counters"]["unchanged"] + done["counters"]["updated"] == 800
    assert not done.get("warnings")
    events = [line["event"] for line in read_all_logs(api, str(done["id"]))]
    assert "zoominfo.partition_split" in events
    assert emu.stats.by_status.get(400, 0) == 0
