"""`dashin logs JOB_ID [--follow]`: a job's log lines, like `tail` / `tail -f`.

Without `--follow` it pages through `GET /jobs/{id}/logs` and stops at the last line. With it, it
reads the SSE stream (`id:` = the line's `seq`) and, when the connection drops or the server goes
away, reconnects with `Last-Event-ID` = the last seq it printed: the server resumes strictly after
it, so nothing is skipped and nothing repeats. The stream's `end` event carries the job's final
status, which becomes the exit code (`EXIT_CODES`); 2 stays Typer's usage-error code and 4 means
the job could not be followed at all (unknown job, bad API key). `latest` names the newest job;
`--local` reads the database instead of the API (`cli.local_reads`).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.text import Text

from cli.api_client import ApiClient, ApiError, ApiUnavailable

EXIT_CODES = {"completed": 0, "failed": 1, "cancelled": 3}
EXIT_UNFOLLOWABLE = 4
LEVEL_STYLE = {"debug": "dim", "info": "green", "warning": "bold yellow", "error": "bold red"}
RECONNECT_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
LogLevel = Literal["debug", "info", "warning", "error"]
LATEST = "latest"


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """`90s`, `15m`, `2h`, `1d` ago, or an ISO timestamp (naive means UTC)."""
    if not value:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", value.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return (now or datetime.now(UTC)) - timedelta(**{unit: float(match[1])})
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            "use a duration (90s, 15m, 2h, 1d) or an ISO timestamp", param_hint="--since"
        ) from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _fields_text(fields: dict[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        shown = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if len(shown) > 120:
            shown = shown[:117] + "..."
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def render_line(line: dict[str, Any]) -> Text:
    """`12:00:01.123 INFO    page.committed  page committed: … checkpoint={"next":100}`."""
    ts = datetime.fromisoformat(line["ts"]).astimezone()
    level = str(line["level"])
    text = Text(ts.strftime("%H:%M:%S.") + f"{ts.microsecond // 1000:03d} ", style="dim")
    text.append(f"{level.upper():<7} ", style=LEVEL_STYLE.get(level, ""))
    text.append(str(line["event"]), style="bold")
    if line.get("message"):
        text.append("  " + str(line["message"]))
    if line.get("fields"):
        text.append("  " + _fields_text(line["fields"]), style="cyan")
    return text


def warning_text(warning: dict[str, Any]) -> str:
    """`records_rejected (12): 12 of 1000 fetched records were rejected; …` (rich markup)."""
    return f"[bold yellow]{warning['code']}[/] ({warning['count']}): {warning['message']}"


def job_warnings(client: ApiClient, job_id: str) -> list[dict[str, Any]]:
    """The finished job's warnings; none when the job cannot be read any more."""
    try:
        job = client.get(f"/jobs/{job_id}")
    except ApiError:
        return []
    return list(job.get("warnings") or [])


def latest_job_id(client: ApiClient) -> str:
    """The id of the domain's newest job (`dashin logs latest`)."""
    for job in client.items("/jobs", limit=1, sort="-created_at", page_size=1):
        return str(job["id"])
    raise ApiError(404, {"title": "Not Found", "detail": "there are no jobs in this domain yet"})


def _logs_local(
    job_id: str,
    level: str | None,
    since: datetime | None,
    write: Callable[[dict[str, Any]], None],
    *,
    follow: bool,
) -> str:
    """`--local`: the lines from the database; the job's status when they end."""
    from cli import local_reads

    def shown(line: dict[str, Any]) -> None:
        if since is None or datetime.fromisoformat(line["ts"]) >= since:
            write(line)

    job_id = local_reads.latest_job_id() if job_id == LATEST else job_id
    return local_reads.print_log(job_id, level, shown, follow=follow)


@dataclass
class LogTail:
    """Prints lines once each, in seq order, and knows where to resume after a drop."""

    client: ApiClient
    job_id: str
    _: KW_ONLY
    level: str | None
    since: datetime | None
    write: Callable[[dict[str, Any]], None]
    notice: Callable[[str], None]
    sleep: Callable[[float], None] = time.sleep
    last_seq: int = field(default=0, init=False)
    reconnects: int = field(default=0, init=False)
    #: lines the server sent again (a resume bug if ever non-zero)
    repeats: int = field(default=0, init=False)

    def _emit(self, line: dict[str, Any]) -> None:
        seq = int(line["seq"])
        if seq <= self.last_seq:  # never print a line twice, whatever the server sends
            self.repeats += 1
            return
        self.last_seq = seq
        if self.since is not None and datetime.fromisoformat(line["ts"]) < self.since:
            return
        self.write(line)

    def print_existing(self) -> None:
        """Every line there is now, page by page."""
        while True:
            page = self.client.get(
                f"/jobs/{self.job_id}/logs", after_seq=self.last_seq, level=self.level, limit=1000
            )
            for line in page["items"]:
                self._emit(line)
            if not page["items"]:
                return

    def _events(self) -> Iterator[tuple[str, Any]]:
        resume = str(self.last_seq) if self.last_seq else None
        for event in self.client.stream(
            f"/jobs/{self.job_id}/logs/stream",
            last_event_id=resume,
            level=self.level,
        ):
            yield event.event, event.json() if event.data else None

    def follow(self) -> str | None:
        """Follow until the job ends; returns its final status (None: the job disappeared)."""
        failures = 0
        self.notice(f"following job {self.job_id} (Ctrl-C stops)")
        while True:
            try:
                for name, data in self._events():
                    failures = 0
                    if name == "log":
                        self._emit(data)
                    elif name == "end":
                        status = data.get("status") if isinstance(data, dict) else None
                        return str(status) if status else None
            except ApiUnavailable as exc:
                wait = RECONNECT_BACKOFF_S[min(failures, len(RECONNECT_BACKOFF_S) - 1)]
                failures += 1
                self.notice(f"connection lost ({exc.problem.get('detail')}); retrying in {wait}s")
                self.sleep(wait)
            except ApiError as exc:
                if exc.status < 500:
                    raise
                wait = RECONNECT_BACKOFF_S[min(failures, len(RECONNECT_BACKOFF_S) - 1)]
                failures += 1
                self.notice(f"server error {exc.status}; retrying in {wait}s")
                self.sleep(wait)
            # a stream that ended without `end` (server restarting) is resumed just the same
            self.reconnects += 1


def logs_command(
    job_id: Annotated[str, typer.Argument(help="the job's id, or `latest` for the newest job")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing until the job ends")
    ] = False,
    level: Annotated[LogLevel | None, typer.Option("--level", help="this level and above")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="only lines newer than 15m, 2h, or an ISO time")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    domain: Annotated[str | None, typer.Option("--domain", help="domain id or name")] = None,
    local: Annotated[
        bool, typer.Option("--local", help="read the database directly, not the API")
    ] = False,
) -> None:
    """Print a job's log lines; with --follow, exit with the job's final status.

    Exit codes with --follow: 0 completed, 1 failed, 3 cancelled, 4 cannot follow (2: usage).
    A completed job's warnings (rejected records, missed matches) are printed last, on stderr;
    the exit code stays 0.
    """
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False)

    def write(line: dict[str, Any]) -> None:
        if as_json:
            sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        else:
            console.print(render_line(line))

    if local:
        ended = _logs_local(job_id, level, parse_since(since), write, follow=follow)
        if not follow:
            return
        if not as_json:
            err.print(f"[bold]job {job_id} {ended}[/]")
        raise typer.Exit(EXIT_CODES.get(ended, EXIT_UNFOLLOWABLE))
    client = ApiClient.from_settings(domain)
    try:
        job_id = latest_job_id(client) if job_id == LATEST else job_id
    except ApiError as exc:
        client.close()
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(EXIT_UNFOLLOWABLE) from None
    tail = LogTail(
        client,
        job_id,
        level=level,
        since=parse_since(since),
        write=write,
        notice=lambda message: err.print(f"[dim]{message}[/]"),
    )
    try:
        if not follow:
            tail.print_existing()
            return
        status = tail.follow()
        # printed last, after every line: what the completed job did not do
        warnings = job_warnings(client, job_id) if status == "completed" else []
    except ApiError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(EXIT_UNFOLLOWABLE) from None
    finally:
        client.close()
    for warning in warnings:
        err.print("warning: " + warning_text(warning), soft_wrap=True)
    if not as_json:
        err.print(f"[bold]job {job_id} {status or 'is gone'}[/]")
    raise typer.Exit(EXIT_CODES.get(status or "", EXIT_UNFOLLOWABLE))
