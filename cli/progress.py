"""Live Rich progress bars for running jobs, fed by `GET /jobs/{id}` (shared by import and demo).

A bar shows the job's own progress (`progress.done/total`: bytes for CSV files, records for
providers), the rows fetched, rows per second over the run, the ETA and the status. Polling a
few times a second is plenty for a human watching; nothing here decides anything for a job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from cli.api_client import ApiClient

Jobs = dict[str, dict[str, Any]]
#: a bar's status colour by the status's tone (models.job_statuses); others are cyan
_TONE_COLOUR = {"success": "green", "failure": "red", "stopping": "magenta", "pausing": "yellow"}


class JobBars:
    def __init__(self, client: ApiClient, console: Console, *, interval_s: float = 0.25) -> None:
        self.client = client
        self.interval_s = interval_s
        self.jobs: Jobs = {}
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._idle = threading.Event()  # never set: an interruptible wait between polls
        self.progress = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rows]:>7} rows"),
            TextColumn("{task.fields[rate]:>8} rows/s"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
        )

    def __enter__(self) -> JobBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def add(self, job_id: str, label: str) -> None:
        self._tasks[job_id] = self.progress.add_task(
            label, total=None, rows=0, rate="-", status="pending"
        )
        self._started[job_id] = time.monotonic()

    def refresh(self) -> Jobs:
        for job_id, task in self._tasks.items():
            job: dict[str, Any] = self.client.get(f"/jobs/{job_id}")
            self.jobs[job_id] = job
            fetched = int(job["counters"]["fetched"])
            elapsed = max(time.monotonic() - self._started[job_id], 1e-3)
            total = job["progress"]["total"]
            done = job["progress"]["done"]
            if job["status"] == "completed" and not total:
                total = done = max(done, 1)
            self.progress.update(
                task,
                total=total,
                completed=done,
                rows=fetched,
                rate=f"{fetched / elapsed:,.0f}" if fetched else "-",
                status=_status(job),
            )
        return self.jobs

    def wait(self, until: Callable[[Jobs], bool], timeout_s: float = 300.0) -> Jobs:
        """Refresh until `until(jobs)` holds; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not until(self.refresh()):
            if time.monotonic() > deadline:
                raise TimeoutError("jobs did not reach the expected state in time")
            self._idle.wait(self.interval_s)
        return self.jobs

    def wait_all_done(self, timeout_s: float = 300.0) -> Jobs:
        from models.job_statuses import TERMINAL_STATUSES  # lazily: no SQLAlchemy at start

        return self.wait(
            lambda jobs: all(j["status"] in TERMINAL_STATUSES for j in jobs.values()), timeout_s
        )


def _status(job: dict[str, Any]) -> str:
    from models.job_statuses import BY_NAME  # lazily: no SQLAlchemy at start

    status = str(job["status"])
    known = BY_NAME.get(status)
    shown = f"[{_TONE_COLOUR.get(known.tone if known else '', 'cyan')}]{status}[/]"
    if job.get("error"):
        shown += f" [red]{str(job['error'])[:60]}[/]"
    return shown
