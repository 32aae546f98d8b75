"""The operator console in real headless Chromium against a real API and a real worker.

Stories: sign in with a password and with an API key; upload a CSV from the sources page (with
its progress bar) and start a job from the jobs page, watching its chip go queued → running →
completed without a reload, and a live notification say so; follow a slow job's log live, pause
and resume it from the buttons; a viewer sees no buttons; another domain's job is 404; a forged
POST is 403. Every page is saved as a screenshot at 1280 px and at 390 px (the folder is
printed).
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api import security
from models import tenancy_repo
from tests.cli.conftest import LiveApi, Proc
from tests.e2e.browser import chrome, screenshots
from tests.e2e.conftest import PASSWORD, ApiUser, sign_up

__all__ = ["chrome", "screenshots"]

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "connectors" / "data" / "leads_sample.csv"
WAIT_S = 60

#: records every status each job row shows, in order, whatever replaces the rows
RECORD_STATUSES = """
window.__statuses = {};
const record = () => document.querySelectorAll("tr[data-job-id]").forEach((row) => {
  const seen = (window.__statuses[row.dataset.jobId] ||= []);
  if (seen[seen.length - 1] !== row.dataset.status) seen.push(row.dataset.status);
});
new MutationObserver(record).observe(document.getElementById("job-rows"),
  {subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"]});
record();
"""

READ_LOG = """
const log = document.getElementById("log");
return [Array.from(log.querySelectorAll("li[data-seq]"), (li) => Number(li.dataset.seq)),
        Number(log.dataset.received)];
"""

FETCH_STATUS = """
const [method, url, done] = arguments;
fetch(url, {method, credentials: "same-origin", redirect: "manual",
            headers: {"HX-Request": "true"}}).then((r) => done(r.status));
"""


def _wait(driver: Any, condition: Any, what: str, timeout: float = WAIT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=what)


def _css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def _all(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def _shoot(driver: Any, folder: Path, name: str) -> None:
    """The page at 1280 px and at 390 px wide."""
    for width in (1280, 390):
        driver.set_window_size(width, 900)
        driver.save_screenshot(str(folder / f"{name}-{width}.png"))
    driver.set_window_size(1280, 900)


def _sign_in(driver: Any, base: str, **fields: str) -> None:
    driver.get(f"{base}/console/login")
    for name, value in fields.items():
        _css(driver, f'input[name="{name}"]').send_keys(value)
    _css(driver, "#sign-in").click()
    _wait(driver, lambda d: "/console/jobs" in d.current_url, "the jobs page after sign-in")
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.eventsReady"),
          "the live event stream")  # fmt: skip


def _viewer(engine: Engine, domain_id: str) -> str:
    email = f"viewer-{uuid.uuid4().hex[:6]}@example.org"
    with Session(engine) as session, session.begin():
        user = tenancy_repo.create_user(
            session,
            email=email,
            password_hash=security.hash_password(PASSWORD),
            signup_domain_id=uuid.UUID(domain_id),
        )
        tenancy_repo.add_membership(session, uuid.UUID(domain_id), user.id, "viewer")
    return email


@pytest.fixture
def manager(live_api: LiveApi) -> Iterator[ApiUser]:
    user = sign_up(live_api.url)
    try:
        yield user
    finally:
        user.client.close()


def test_sign_in_upload_a_csv_and_watch_its_job_complete_live(
    chrome: Any, live_api: LiveApi, e2e_worker: Proc, manager: ApiUser, screenshots: Path
) -> None:
    driver, base = chrome, live_api.url
    driver.get(f"{base}/console/jobs")  # not signed in: sent to the sign-in page
    _wait(driver, lambda d: "/console/login" in d.current_url, "the sign-in page")
    _shoot(driver, screenshots, "login")
    _sign_in(driver, base, email=manager.email, password=PASSWORD)

    # Given a CSV source, with a file uploaded from the sources page
    source = manager.client.post("/data-sources", json={"type": "csv", "name": "Trade show"})
    assert source.status_code == 201, source.text
    source_id = source.json()["id"]
    driver.get(f"{base}/console/sources")
    form = f'form[data-upload-url="/console/sources/{source_id}/files"]'
    _css(driver, f"{form} input[type=file]").send_keys(str(SAMPLE))
    _css(driver, f'{form} button[data-action="upload"]').click()
    _wait(driver, lambda d: "Uploaded" in _css(d, f"{form} output").text, "the upload")
    assert _css(driver, f"{form} progress").get_attribute("value") == "100"
    _css(driver, f'tr[data-source-id="{source_id}"] button[data-action="test"]').click()
    _wait(driver, lambda d: _all(d, f"#check-{source_id} [data-check-ok]"), "test connection")
    _shoot(driver, screenshots, "sources")

    # When the manager starts a job from the jobs page
    driver.get(f"{base}/console/jobs")
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.eventsReady"),
          "the live event stream")  # fmt: skip
    driver.execute_script(RECORD_STATUSES)
    _css(driver, ".new-job summary").click()
    from selenium.webdriver.support.ui import Select

    Select(_css(driver, "#new-source")).select_by_value(source_id)
    _css(driver, "#start-job").click()
    job_id = _wait(
        driver,
        lambda d: (els := _all(d, "#flash [data-job-id]")) and els[0].get_attribute("data-job-id"),
        "the started job's id",
    )
    # Then its row appears and its chip goes queued → running → completed, with no reload
    row = f'tr[data-job-id="{job_id}"]'
    _wait(driver, lambda d: _all(d, f'{row}[data-status="completed"]'), "the completed chip")
    _wait(driver, lambda d: _css(d, f'{row} [data-counter="fetched"]').text == "250",
          "the final counters")  # fmt: skip
    seen = driver.execute_script("return window.__statuses[arguments[0]]", job_id)
    assert [s for s in seen if s in ("queued", "running", "completed")][:3] == [
        "queued",
        "running",
        "completed",
    ], seen
    # And the manager is told, live: a notification with a link to the job, dismissable
    note = f'#notifications p.note[data-kind="job.completed"] a[href="/console/jobs/{job_id}"]'
    _wait(driver, lambda d: _all(d, note), "the job.completed notification")
    assert "job completed" in _css(driver, '#notifications p.note[data-kind="job.completed"]').text
    _shoot(driver, screenshots, "jobs")
    _css(driver, '#notifications p.note[data-kind="job.completed"] button').click()
    assert not _all(driver, '#notifications p.note[data-kind="job.completed"]')

    # And its page shows the counters and the whole log, streamed in
    _css(driver, f"{row} a").click()
    _wait(driver, lambda d: _all(d, "#log li[data-seq]") and _all(d, "#log[data-ended]"),
          "the log tail to the end")  # fmt: skip
    seqs = [int(li.get_attribute("data-seq")) for li in _all(driver, "#log li[data-seq]")]
    assert seqs == list(range(1, len(seqs) + 1))  # gapless, in order, no repeats
    assert _css(driver, "#job-summary").get_attribute("data-status") == "completed"
    _shoot(driver, screenshots, "job")
    for name in ("overview", "schedules", "leads"):
        driver.get(f"{base}/console" + ("" if name == "overview" else f"/{name}"))
        _wait(driver, lambda d: _all(d, "main h1"), f"the {name} page")
        _shoot(driver, screenshots, name)


def test_follow_a_job_live_then_pause_and_resume_it_from_the_buttons(
    chrome: Any, live_api: LiveApi, e2e_worker: Proc, manager: ApiUser, screenshots: Path
) -> None:
    driver, base = chrome, live_api.url
    key = manager.client.post("/api-keys", json={"name": "console"})
    assert key.status_code == 201, key.text
    _sign_in(driver, base, api_key=key.json()["key"])  # signed in with an API key this time
    source = manager.client.post(
        "/data-sources", json={"type": "synthetic", "name": "Slow", "config": {"total": 100000}}
    )
    assert source.status_code == 201, source.text
    job = manager.client.post(
        "/jobs",
        json={
            "data_source_id": source.json()["id"],
            "params": {"page_size": 5, "delay_s": 0.2},
            "start": True,
        },
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    driver.get(f"{base}/console/jobs/{job_id}")
    driver.execute_script("window.__sameDocument = true")
    summary = "#job-summary"

    # The log grows while we watch (no reload: the marker survives)
    _wait(driver, lambda d: len(_all(d, "#log li[data-seq]")) >= 3, "first log lines")
    seen = len(_all(driver, "#log li[data-seq]"))
    _wait(driver, lambda d: len(_all(d, "#log li[data-seq]")) > seen + 2, "more log lines")
    assert driver.execute_script("return window.__sameDocument") is True

    # Pause from the button: pausing, then paused after the current page
    _wait(driver, lambda d: _all(d, f'{summary}[data-status="running"] [data-action="pause"]'),
          "a running job's pause button")  # fmt: skip
    _css(driver, f'{summary} [data-action="pause"]').click()
    _wait(driver, lambda d: _all(d, f'{summary}[data-status="paused"]'), "paused")
    assert not _all(driver, f'{summary} [data-action="pause"]')
    _shoot(driver, screenshots, "job-paused")

    # Resume from the button: queued, then running again
    _wait(driver, lambda d: _all(d, f'{summary}[data-status="paused"] [data-action="resume"]'),
          "the paused job's resume button")  # fmt: skip
    _css(driver, f'{summary} [data-action="resume"]').click()
    _wait(driver, lambda d: _all(d, f'{summary}[data-status="running"]'), "running again")
    before = len(_all(driver, "#log li[data-seq]"))
    _wait(driver, lambda d: len(_all(d, "#log li[data-seq]")) > before, "lines after resume")
    seqs = [int(li.get_attribute("data-seq")) for li in _all(driver, "#log li[data-seq]")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert driver.execute_script("return window.__sameDocument") is True

    # Cancel ends it (and the log stream with it)
    _wait(driver, lambda d: _all(d, f'{summary}[data-status="running"] [data-action="cancel"]'),
          "the running job's cancel button")  # fmt: skip
    _css(driver, f'{summary} [data-action="cancel"]').click()
    _wait(driver, lambda d: _all(d, f'{summary}[data-status="cancelled"]'), "cancelled")
    _wait(driver, lambda d: _all(d, "#log[data-ended]"), "the log stream's end")


def test_viewer_sees_no_buttons_other_domains_are_404_and_forged_posts_403(
    chrome: Any, live_api: LiveApi, manager: ApiUser, engine: Engine, screenshots: Path
) -> None:
    driver, base = chrome, live_api.url
    source = manager.client.post("/data-sources", json={"type": "synthetic", "name": "S"})
    job = manager.client.post("/jobs", json={"data_source_id": source.json()["id"]})
    job_id = job.json()["id"]
    viewer = _viewer(engine, manager.domain_id)

    # A viewer of the domain sees its job and no action button anywhere
    _sign_in(driver, base, email=viewer, password=PASSWORD)
    assert _all(driver, f'tr[data-job-id="{job_id}"][data-status="pending"]')
    assert not _all(driver, "[data-action]:not([data-action='sign-out'])")
    driver.get(f"{base}/console/jobs/{job_id}")
    _wait(driver, lambda d: _all(d, f'#job-summary[data-job-id="{job_id}"]'), "the job page")
    assert not _all(driver, "[data-action]:not([data-action='sign-out'])")
    _shoot(driver, screenshots, "job-viewer")
    # A forged POST (no CSRF token) from the signed-in browser is refused
    status = driver.execute_async_script(FETCH_STATUS, "POST", f"/console/jobs/{job_id}/start")
    assert status == 403

    # Someone of another domain gets 404 for the job, its page and its log stream
    other = sign_up(base)
    driver.delete_all_cookies()
    _sign_in(driver, base, email=other.email, password=PASSWORD)
    assert not _all(driver, f'tr[data-job-id="{job_id}"]')
    for path in (f"/console/jobs/{job_id}", f"/api/v1/jobs/{job_id}/logs/stream"):
        assert driver.execute_async_script(FETCH_STATUS, "GET", path) == 404, path
    driver.get(f"{base}/console/jobs/{job_id}")
    assert "not found" in driver.page_source.lower()
    other.client.close()


def test_the_log_tail_has_no_gap_and_no_repeat_across_an_api_restart(
    chrome: Any,
    live_env: dict[str, str],
    live_api: LiveApi,
    e2e_worker: Proc,
    manager: ApiUser,
) -> None:
    """The browser's EventSource reconnects with Last-Event-ID; the stream resumes after it."""
    driver, base = chrome, live_api.url
    source = manager.client.post(
        "/data-sources", json={"type": "synthetic", "name": "Slow", "config": {"total": 100000}}
    )
    job = manager.client.post(
        "/jobs",
        json={
            "data_source_id": source.json()["id"],
            "params": {"page_size": 5, "delay_s": 0.2},
            "start": True,
        },
    )
    job_id = job.json()["id"]
    _sign_in(driver, base, email=manager.email, password=PASSWORD)
    driver.get(f"{base}/console/jobs/{job_id}")
    _wait(driver, lambda d: len(_all(d, "#log li[data-seq]")) >= 5, "first log lines")

    # When the API process dies (the worker goes on writing lines) and comes back on its port
    os.killpg(live_api.proc.popen.pid, signal.SIGKILL)
    live_api.proc.popen.wait(10)
    _wait(driver, lambda d: "reconnecting" in _css(d, "#log-state").text, "the lost stream")
    shown_before = len(_all(driver, "#log li[data-seq]"))
    restarted = Proc(list(live_api.proc.popen.args), live_env)  # type: ignore[arg-type]
    try:
        restarted.wait_for("Uvicorn running on")
        # Then the tail carries on from the last line it showed, with the lines written meanwhile
        _wait(driver, lambda d: _css(d, "#log-state").text == "live", "the stream back")
        _wait(driver, lambda d: len(_all(d, "#log li[data-seq]")) > shown_before + 5,
              "lines after the reconnect")  # fmt: skip
        # read in one script, so no line arrives between the two counts
        seqs, received = driver.execute_script(READ_LOG)
        assert seqs == list(range(1, len(seqs) + 1))  # no gap
        assert received == len(seqs)  # nothing sent twice: it resumed after Last-Event-ID
        manager.client.post(f"/jobs/{job_id}/cancel")
    finally:
        restarted.stop()
