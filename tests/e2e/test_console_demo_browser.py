"""Issue 17's done-when in real headless Chromium: the README's first command, then its console.

`./run --port N` runs from a fresh clone, as `test_readme_try_it` does (this checkout's venv lent
as the clone's `.venv`; this module's own PostgreSQL database and Redis through `DATABASE_URL` /
`REDIS_URL`). A newcomer then has only what `./run` printed: the console URL, the bootstrap API
key, the demo user's password and the slow sandbox job's address. With those, in the browser:

* the printed console URL, signed in with the printed key, the demo domain picked in the header
  (the key's own domain is the admin's): the demo's jobs are listed; the slow sandbox job's log
  grows without a reload; Pause makes it paused, Resume makes it run and log again;
* the printed job address, signed in with the printed demo password, opens that job;
* the jobs page filters by status and by source; the schedules page shows a schedule's
  description and next five fire times; the log level filter hides the lines below it.

One stack serves the module (starting it is most of the time). Waits are `WebDriverWait` on DOM
conditions; the screenshots' folder is printed (`-s`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from runtime.embedded import free_port
from tests import services
from tests.cli.conftest import Proc
from tests.e2e.browser import chrome, screenshots
from tests.e2e.test_readme_try_it import READY, fresh_clone, run_env

__all__ = ["chrome", "screenshots"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DEMO_DOMAIN = "demo.dashin.dev"
SLOW_SANDBOX = "Apollo sandbox (slow: try pause and resume)"
DEMO_SOURCES = ("Demo CSV", "Apollo sandbox", "LinkedIn sandbox")
WAIT_S = 90  # generous: a loaded 2-core machine runs the stack, the browser and other suites


@dataclass(frozen=True)
class Printed:
    """What `./run` printed that a newcomer acts on."""

    console_url: str
    api_key: str
    job_url: str
    email: str
    password: str
    output: str

    @property
    def base(self) -> str:
        """The API's root (scheme, host and port of the console URL)."""
        parts = urlsplit(self.console_url)
        return f"{parts.scheme}://{parts.netloc}"


def read_printed(output: str) -> Printed:
    console = re.search(r"^\s*console\s+(http://\S+/console\S*)", output, re.MULTILINE)
    key = re.search(r"export DASHIN_API_KEY=(dsk_[\w-]+)", output)
    job = re.search(r"(http://\S+/console/\S*jobs/[0-9a-f-]{36})", output)
    login = re.search(r"sign in with (\S+@\S+) / '([^']+)'", output)
    assert console and key and job and login, output
    return Printed(console[1], key[1], job[1], login[1], login[2], output)


@pytest.fixture(scope="module")
def demo_stack(
    tmp_path_factory: pytest.TempPathFactory,
    pg_admin_url: str,
    template_db: str,
    redis_base_url: str,
) -> Iterator[Printed]:
    """`./run --port N` from a fresh clone, up to its last line (the demo done, the slow job
    started): what it printed."""
    import redis

    tmp = tmp_path_factory.mktemp("console-demo")
    clone = fresh_clone(tmp)
    flusher = redis.Redis.from_url(redis_base_url)
    flusher.flushdb()
    with services.scratch_database(pg_admin_url, template_db) as db_url:
        env = run_env(tmp, db_url, redis_base_url)
        stack = Proc(["./run", "--port", str(free_port())], env, cwd=clone)
        try:
            stack.wait_for(READY, timeout=300)
            yield read_printed("".join(stack.output))
        finally:
            stack.stop()
            flusher.flushdb()
            flusher.close()


# --- browser helpers -----------------------------------------------------------------------


def _wait(driver: Any, condition: Any, what: str, timeout: float = WAIT_S) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # live parts are swapped while a condition reads them: read again on the next poll
    return WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, message=what)


def _all(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def _css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def _text(driver: Any, selector: str) -> str:
    """An element's text read in one script (live parts are replaced between two calls)."""
    return str(
        driver.execute_script(
            "const el = document.querySelector(arguments[0]); return el ? el.textContent : ''",
            selector,
        )
    ).strip()


def _rows(driver: Any) -> list[tuple[str, str, str]]:
    """(job id, status, source) of every job row, read in one script."""
    return [
        (job_id, status, source.strip())
        for job_id, status, source in driver.execute_script(
            'return Array.from(document.querySelectorAll("tr[data-job-id]"), (r) =>'
            " [r.dataset.jobId, r.dataset.status, r.cells[2].textContent])"
        )
    ]


def _click(driver: Any, selector: str, what: str) -> None:
    """Click once it is there (a live part replaced under the click is found again)."""
    _wait(driver, lambda d: _css(d, selector).click() or True, what)


def _events_ready(driver: Any) -> bool:
    return bool(driver.execute_script("return document.body.dataset.eventsReady"))


def _log_seqs(driver: Any) -> list[int]:
    return list(
        driver.execute_script(
            'return Array.from(document.querySelectorAll("#log li[data-seq]"),'
            " (li) => Number(li.dataset.seq))"
        )
    )


def _shoot(driver: Any, folder: Path, name: str) -> None:
    driver.save_screenshot(str(folder / f"demo-{name}.png"))


def _sign_in(driver: Any, url: str, **fields: str) -> None:
    """Open a printed address (not signed in: the sign-in form), fill it in, sign in."""
    driver.get(url)
    _wait(driver, lambda d: "/console/login" in d.current_url, "the sign-in page")
    for name, value in fields.items():
        _css(driver, f'input[name="{name}"]').send_keys(value)
    _css(driver, "#sign-in").click()
    _wait(driver, lambda d: "/console/login" not in d.current_url, "signed in")
    _wait(driver, _events_ready, "the live event stream")


def _sign_in_with_key(driver: Any, printed: Printed) -> None:
    """The printed console URL, the printed key in the "API key" field: in the demo domain."""
    _sign_in(driver, printed.console_url, api_key=printed.api_key)
    assert _in_demo_domain(driver), _text(driver, "header .who")


def _open_signed_in(driver: Any, printed: Printed, path: str) -> None:
    """A console page, signed in as the newcomer (the printed console URL and key)."""
    _sign_in_with_key(driver, printed)
    driver.get(f"{printed.base}{path}")
    _wait(driver, _events_ready, "the live event stream")


def _in_demo_domain(driver: Any) -> bool:
    """The header names the demo domain (a platform admin's switcher, or a member's label)."""
    chosen = _text(driver, "#domain-select option[selected]") or _text(driver, "header .domain")
    return chosen.startswith(f"{DEMO_DOMAIN} ")


def _source_names(driver: Any) -> dict[str, str]:
    """{source name: id} from the jobs page's source filter."""
    return {
        o.text: o.get_attribute("value")
        for o in _all(driver, "#f-source option")
        if o.get_attribute("value")
    }


# --- the done-when -------------------------------------------------------------------------


def test_the_printed_console_shows_the_demo_and_its_slow_job_pauses_and_resumes(
    demo_stack: Printed, chrome: Any, screenshots: Path
) -> None:
    driver = chrome
    # Given what `./run` printed: the console URL and the bootstrap key
    assert "/console" in demo_stack.console_url
    # When the newcomer opens the console URL and signs in with the key
    _sign_in_with_key(driver, demo_stack)
    # Then they are on the jobs page of the demo domain, with no other step
    assert urlsplit(driver.current_url).path == "/console/jobs"
    _shoot(driver, screenshots, "1-signed-in-with-the-key")
    # and the demo's jobs are listed: one completed per demo source, and the slow one live
    sources = _source_names(driver)
    assert set(DEMO_SOURCES) | {SLOW_SANDBOX} <= set(sources), sources
    rows = {job_id: (source, status) for job_id, status, source in _rows(driver)}
    by_source = {name: status for name, status in rows.values()}
    for name in DEMO_SOURCES:
        assert by_source.get(name) == "completed", rows
    slow_id = demo_stack.job_url[-36:]
    assert rows[slow_id][0] == SLOW_SANDBOX, rows
    assert rows[slow_id][1] in ("queued", "running"), rows
    _shoot(driver, screenshots, "2-demo-jobs")

    # When they open the slow sandbox job from its row
    _css(driver, f'tr[data-job-id="{slow_id}"] a').click()
    _wait(driver, lambda d: _all(d, f'#job-summary[data-job-id="{slow_id}"]'), "the job page")
    driver.execute_script("window.__sameDocument = true")  # gone if the page reloads
    summary = "#job-summary"
    # Then log lines arrive while they watch, without a reload
    _wait(driver, lambda d: _all(d, "#log li[data-seq]"), "the first log lines")
    shown = len(_log_seqs(driver))
    _wait(driver, lambda d: len(_log_seqs(d)) > shown, "a new log line, live", timeout=120)
    _wait(driver, lambda d: _all(d, f'{summary}[data-status="running"]'), "the job running")
    _shoot(driver, screenshots, "3-slow-job-live")

    # When they press Pause: the status becomes paused (after the page in flight)
    _click(driver, f'{summary}[data-status="running"] [data-action="pause"]', "Pause")
    _wait(driver, lambda d: _all(d, f'{summary}[data-status="paused"]'), "paused")
    _wait(driver, lambda d: _text(d, f"{summary} [data-chip]") == "paused", "the chip")
    pages_paused = int(_text(driver, f'{summary} [data-counter="pages"]'))
    assert not _all(driver, f'{summary} [data-action="pause"]')
    _shoot(driver, screenshots, "4-slow-job-paused")

    # When they press Resume: it runs again, its pages and its log carry on
    before = len(_log_seqs(driver))
    _click(driver, f'{summary}[data-status="paused"] [data-action="resume"]', "Resume")
    _wait(driver, lambda d: _all(d, f'{summary}[data-status="running"]'), "running again")
    _wait(
        driver,
        lambda d: int(_text(d, f'{summary} [data-counter="pages"]')) > pages_paused,
        "a page fetched after the resume",
        timeout=120,
    )
    _wait(driver, lambda d: len(_log_seqs(d)) > before, "log lines after the resume")
    seqs = _log_seqs(driver)
    assert seqs == list(range(1, len(seqs) + 1))  # the tail kept every line once, in order
    events = driver.execute_script(
        'return Array.from(document.querySelectorAll(".timeline li"), (li) => li.dataset.event)'
    )
    assert "job.pause" in events and "job.resume" in events, events
    assert driver.execute_script("return window.__sameDocument") is True
    _shoot(driver, screenshots, "5-slow-job-resumed")


@pytest.mark.parametrize("credentials", ["the key", "the demo password"])
def test_the_printed_job_address_opens_the_slow_job_with_either_printed_credential(
    demo_stack: Printed, chrome: Any, screenshots: Path, credentials: str
) -> None:
    driver = chrome
    fields = (
        {"api_key": demo_stack.api_key}
        if credentials == "the key"
        else {"email": demo_stack.email, "password": demo_stack.password}
    )
    _sign_in(driver, demo_stack.job_url, **fields)  # the sign-in page, then the job
    slow_id = demo_stack.job_url[-36:]
    _wait(driver, lambda d: _all(d, f'#job-summary[data-job-id="{slow_id}"]'), "the slow job")
    assert _in_demo_domain(driver), _text(driver, "header .who")
    _wait(driver, lambda d: _all(d, "#log li[data-seq]"), "its log")
    _shoot(driver, screenshots, f"6-job-link-{credentials.replace(' ', '-')}")


# --- console parts no other test asserts -----------------------------------------------------


def test_the_jobs_page_filters_by_status_and_by_source(
    demo_stack: Printed, chrome: Any, screenshots: Path
) -> None:
    from selenium.webdriver.support.ui import Select

    driver = chrome
    _open_signed_in(driver, demo_stack, "/console/jobs")
    sources = _source_names(driver)
    assert len(_rows(driver)) >= 4

    def shown() -> list[tuple[str, str, str]]:
        return _rows(driver)

    # Status: only completed rows (the three demo jobs at least), and the URL keeps the filter
    Select(_css(driver, "#f-status")).select_by_value("completed")
    _wait(driver, lambda d: "status=completed" in d.current_url, "the status filter applied")
    _wait(driver, lambda d: all(s == "completed" for _, s, _ in shown()), "completed only")
    completed = shown()
    assert {name for _, _, name in completed} >= set(DEMO_SOURCES), completed
    _shoot(driver, screenshots, "7-jobs-filter-status")

    # Source (with status back to any): only the slow sandbox's job
    Select(_css(driver, "#f-status")).select_by_value("")
    Select(_css(driver, "#f-source")).select_by_value(sources[SLOW_SANDBOX])
    _wait(
        driver,
        lambda d: (
            f"data_source_id={sources[SLOW_SANDBOX]}" in d.current_url
            and "status=completed" not in d.current_url
        ),
        "the source filter applied",
    )
    _wait(driver, lambda d: {n for _, _, n in shown()} == {SLOW_SANDBOX}, "the slow job only")
    slow_id = demo_stack.job_url[-36:]
    assert slow_id in {job_id for job_id, _, _ in shown()}
    _shoot(driver, screenshots, "8-jobs-filter-source")

    # Both: the CSV source's completed job, nothing of the others
    Select(_css(driver, "#f-source")).select_by_value(sources["Demo CSV"])
    Select(_css(driver, "#f-status")).select_by_value("completed")
    _wait(
        driver,
        lambda d: (
            (rows := shown()) and all(s == "completed" and n == "Demo CSV" for _, s, n in rows)
        ),
        "completed jobs of Demo CSV only",
    )


def test_the_schedules_page_describes_a_schedule_and_its_next_five_fire_times(
    demo_stack: Printed, chrome: Any, screenshots: Path
) -> None:
    driver = chrome
    api = httpx.Client(
        base_url=f"{demo_stack.base}/api/v1",
        headers={"Authorization": f"Bearer {demo_stack.api_key}", "Dashin-Domain": DEMO_DOMAIN},
        timeout=30,
    )
    with api:
        listed = api.get("/data-sources").json()["items"]
        source = next(s for s in listed if s["name"] == "Demo CSV")
        made = api.post(
            "/schedules",
            json={
                "data_source_id": source["id"],
                "name": "Monday morning",
                "cron": "0 9 * * 1",
                "timezone": "Europe/Paris",
            },
        )
        assert made.status_code == 201, made.text
        schedule = made.json()
    _open_signed_in(driver, demo_stack, "/console/schedules")
    row = f'tr[data-schedule-id="{schedule["id"]}"]'
    _wait(driver, lambda d: _all(d, row), "the schedule's row")
    text = _text(driver, row)
    assert schedule["description"] in text and "Monday" in text, text
    assert "Europe/Paris" in text and "Demo CSV" in text
    fires = [t.get_attribute("datetime") for t in _all(driver, f"{row} ol.fires time")]
    assert len(fires) == 5 and fires == sorted(fires), fires
    assert [f[:16] for f in fires] == [f[:16] for f in schedule["next_fire_times"]], fires
    _shoot(driver, screenshots, "9-schedules")


def test_the_log_level_filter_hides_the_lines_below_it(
    demo_stack: Printed, chrome: Any, screenshots: Path
) -> None:
    from selenium.webdriver.support.ui import Select

    driver = chrome
    _open_signed_in(driver, demo_stack, f"/console/jobs/{demo_stack.job_url[-36:]}")
    _wait(driver, lambda d: len(_log_seqs(d)) >= 3, "the slow job's log")

    def levels() -> set[str]:
        return {li.get_attribute("data-level") for li in _all(driver, "#log li[data-seq]")}

    assert "info" in levels(), levels()
    Select(_css(driver, "#log-level")).select_by_value("warning")
    _wait(driver, lambda d: _text(d, "#log-state") == "live", "the filtered stream")
    _wait(driver, lambda d: "info" not in levels(), "the info lines gone")
    assert levels() <= {"warning", "error"}, levels()
    _shoot(driver, screenshots, "10-log-level-warning")
    Select(_css(driver, "#log-level")).select_by_value("info")
    _wait(driver, lambda d: "info" in levels(), "the info lines back")
    seqs = _log_seqs(driver)
    assert seqs == sorted(set(seqs)), seqs
