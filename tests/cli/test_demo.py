"""`dashin demo` against a live API and worker: every job completes, one was paused and resumed."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest
from rich.console import Console

from cli.api_client import ApiClient
from cli.demo import DEMO_DOMAIN, emulators, run_demo, start_slow_job
from tests.cli.conftest import LiveApi, Proc


@pytest.fixture
def all_queues_worker(live_env: dict[str, str]) -> Iterator[Proc]:
    argv = [sys.executable, "-m", "workers", "--queues", "csv,apollo,linkedin", "--threads", "3"]
    proc = Proc(argv, live_env)
    try:
        proc.wait_for("worker.ready")
        yield proc
    finally:
        proc.stop()


@pytest.mark.slow
def test_demo_runs_every_job_to_completion_with_a_pause_and_resume(
    live_api: LiveApi, all_queues_worker: Proc, settings_env: None, db_url: str
) -> None:
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=False)
    started = time.monotonic()
    with ApiClient(live_api.url, None) as client:
        jobs = run_demo(client, console)
    elapsed = time.monotonic() - started
    text = out.getvalue()

    assert elapsed < 60, text
    assert sorted(job["status"] for job in jobs.values()) == ["completed"] * 3, text
    assert "paused the Apollo job" in text
    assert "Leads: " in text and "demo finished" in text
    with psycopg.connect(db_url) as conn:
        moves = conn.execute(
            "SELECT l.event FROM job_logs l JOIN jobs j ON j.id = l.job_id "
            "JOIN data_sources s ON s.id = j.data_source_id "
            "WHERE s.type = 'apollo' AND l.event LIKE 'job.%%' ORDER BY l.seq"
        ).fetchall()
        leads = conn.execute(
            "SELECT count(*) FROM leads l JOIN domains d ON d.id = l.domain_id "
            "WHERE d.domain_name = %s",
            (DEMO_DOMAIN,),
        ).fetchone()
    events = [m[0] for m in moves]
    assert "job.pause" in events and "job.resume" in events
    assert events.index("job.pause") < events.index("job.resume")
    assert leads is not None and leads[0] > 600  # CSV sample + Apollo + LinkedIn


@pytest.mark.slow
def test_demo_runs_again_on_the_same_stack(
    live_api: LiveApi, all_queues_worker: Proc, settings_env: None
) -> None:
    # A second run logs in instead of signing up and re-points the sources at new emulators.
    for _ in range(2):
        with ApiClient(live_api.url, None) as client:
            jobs = run_demo(client, Console(file=io.StringIO(), width=160))
        assert all(job["status"] == "completed" for job in jobs.values())


@pytest.mark.slow
def test_the_slow_sandbox_job_can_be_followed_paused_and_resumed(
    live_api: LiveApi, all_queues_worker: Proc, settings_env: None
) -> None:
    # Given the demo has run and `up --demo` left its slow sandbox job running (issue 17)
    with ApiClient(live_api.url, None) as client, emulators() as emus:
        run_demo(client, Console(file=io.StringIO(), width=160), emus)
        job = start_slow_job(client, emus)

        def status(wanted: set[str]) -> dict[str, object]:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                current = client.get(f"/jobs/{job['id']}")
                if current["status"] in wanted:
                    return dict(current)
                time.sleep(0.2)  # polling the API as the console's reader would
            raise AssertionError(f"job never reached {wanted}: {current['status']}")

        # Then it runs long enough to be paused by hand, and carries on after a resume
        running = status({"running"})
        assert running["counters"]["pages"] < 50  # 200 pages at 1.5 s: minutes, not seconds
        client.post(f"/jobs/{job['id']}/pause")
        paused = status({"paused"})
        client.post(f"/jobs/{job['id']}/resume")
        status({"running"})
        client.post(f"/jobs/{job['id']}/cancel")
        assert status({"cancelled"})["counters"]["pages"] >= paused["counters"]["pages"]
