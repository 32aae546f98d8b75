"""`dashin jobs list|show|create|start|pause|resume|cancel`.

By default the commands talk to the API (`DASHIN_API_URL`, `DASHIN_API_KEY`), so roles, domain
scoping and auditing apply as for any client. `--local` goes straight to the database through the
same state machine (`models.job_states`) and enqueues with `workers.enqueue` after commit: the
operator's way in when the API is down. Both paths print the API's wire shape (`JobOut`), so
`--json` output does not depend on the path taken.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Protocol

import typer
from rich.table import Column, Table

from cli.api_client import ApiClient
from cli.logs import warning_text
from cli.output import emit, print_table
from models import job_statuses

app = typer.Typer(help="Create, inspect and steer scraping jobs.", no_args_is_help=True)

#: a status's colour by its tone (models.job_statuses), so a new status needs no entry here
TONE_STYLE = {
    "idle": "white",
    "waiting": "cyan",
    "active": "bold blue",
    "pausing": "yellow",
    "stopping": "magenta",
    "success": "bold green",
    "failure": "bold red",
}

Local = Annotated[bool, typer.Option("--local", help="use the database directly, not the API")]
Domain = Annotated[
    str | None,
    typer.Option("--domain", help="act in this domain (id or name; API only): demo.dashin.dev"),
]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]
JobId = Annotated[str, typer.Argument(help="the job's id")]


class JobBackend(Protocol):
    def list(self, status: list[str], source: str | None, limit: int) -> list[dict[str, Any]]: ...
    def get(self, job_id: str) -> dict[str, Any]: ...
    def create(
        self, source: str, campaign: str | None, params: dict[str, Any], start: bool
    ) -> dict[str, Any]: ...
    def move(self, job_id: str, move: str) -> dict[str, Any]: ...


class ApiJobs:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def list(self, status: list[str], source: str | None, limit: int) -> list[dict[str, Any]]:
        return list(
            self.client.items(
                "/jobs",
                limit=limit,
                status=status or None,
                data_source_id=source,
                sort="-created_at",
                page_size=min(limit, 200),
            )
        )

    def get(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.client.get(f"/jobs/{job_id}")
        return job

    def create(
        self, source: str, campaign: str | None, params: dict[str, Any], start: bool
    ) -> dict[str, Any]:
        body = {"data_source_id": source, "campaign_id": campaign, "params": params}
        job: dict[str, Any] = self.client.post("/jobs", {**body, "start": start})
        return job

    def move(self, job_id: str, move: str) -> dict[str, Any]:
        job: dict[str, Any] = self.client.post(f"/jobs/{job_id}/{move}")
        return job


class LocalJobs:
    """The database path: the same repositories and moves the API uses, no domain scoping."""

    def _out(self, job: Any) -> dict[str, Any]:
        from api.schemas.jobs import JobOut

        out: dict[str, Any] = JobOut.build(job).model_dump(mode="json")
        return out

    def list(self, status: list[str], source: str | None, limit: int) -> list[dict[str, Any]]:
        from models import jobs_query
        from runtime.db import session_scope

        source_id = uuid.UUID(source) if source else None
        with session_scope() as session:
            jobs = jobs_query.newest_everywhere(
                session, status=status, data_source_id=source_id, limit=limit
            )
            return [self._out(job) for job in jobs]

    def get(self, job_id: str) -> dict[str, Any]:
        from models import jobs_repo
        from runtime.db import session_scope

        with session_scope() as session:
            return self._out(jobs_repo.get_job(session, uuid.UUID(job_id)))

    def create(
        self, source: str, campaign: str | None, params: dict[str, Any], start: bool
    ) -> dict[str, Any]:
        from api.job_inputs import check_campaign, validate_params
        from models import jobs_repo
        from models.sources import DataSource
        from runtime.db import session_scope
        from runtime.errors import NotFound

        with session_scope() as session:
            data_source = session.get(DataSource, uuid.UUID(source))
            if data_source is None:
                raise NotFound(f"data source {source} not found")
            campaign_id = uuid.UUID(campaign) if campaign else None
            check_campaign(session, campaign_id, data_source.domain_id)
            job = jobs_repo.create_job(
                session,
                domain_id=data_source.domain_id,
                data_source_id=data_source.id,
                campaign_id=campaign_id,
                params=validate_params(session, data_source, params),
            )
            assert job is not None  # only schedule slots can collide
            job_id = job.id
        if start:
            return self.move(str(job_id), "start")
        return self.get(str(job_id))

    def move(self, job_id: str, move: str) -> dict[str, Any]:
        from models import job_states
        from runtime.db import session_scope
        from workers.enqueue import enqueue_job

        with session_scope() as session:
            moved = getattr(job_states, move)(session, uuid.UUID(job_id))
        if moved.status == "queued":  # committed above: the worker will see the row
            enqueue_job(moved.id, moved.queue)
        return self.get(job_id)


def backend(local: bool, domain: str | None) -> JobBackend:
    if local:
        from runtime.logging import configure_logging
        from runtime.settings import get_settings

        configure_logging(get_settings())
        return LocalJobs()
    return ApiJobs(ApiClient.from_settings(domain))


def status_text(status: str) -> str:
    from models.job_statuses import BY_NAME  # lazily: the CLI starts without SQLAlchemy

    known = BY_NAME.get(status)
    return f"[{TONE_STYLE[known.tone] if known else 'white'}]{status}[/]"


def print_jobs(jobs: list[dict[str, Any]]) -> None:
    table = Table("status", "queue", "pages", "fetched", "inserted", "rejected", "created")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=36))  # always copyable whole
    for job in jobs:
        c = job["counters"]
        table.add_row(
            job["id"],
            status_text(job["status"]),
            job["queue"],
            str(c["pages"]),
            str(c["fetched"]),
            str(c["inserted"]),
            str(c["rejected"]),
            job["created_at"][:19].replace("T", " "),
        )
    print_table(table)


def print_job(job: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    progress = job["progress"]
    shown = {
        "id": job["id"],
        "status": status_text(job["status"])
        + (f" ({job['pause_reason']})" if job.get("pause_reason") else ""),
        "queue": job["queue"],
        "data source": job["data_source_id"],
        "campaign": job.get("campaign_id") or "-",
        "params": json.dumps(job["params"]),
        "progress": f"{progress['done']}/{progress['total'] if progress['total'] else '?'}"
        + (f" ({progress['missed']} missed)" if progress.get("missed") else ""),
        "counters": ", ".join(f"{k} {v}" for k, v in job["counters"].items()),
        "attempts": str(job["attempts"]),
        "error": job.get("error") or "-",
        "warnings": "\n".join(warning_text(w) for w in job.get("warnings") or []) or "-",
        "created": job["created_at"],
        "started": job.get("started_at") or "-",
        "finished": job.get("finished_at") or "-",
    }
    for name, value in shown.items():
        table.add_row(f"[bold]{name}[/]", value)
    print_table(table)


def parse_params(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """`--param key=value` (values parsed as JSON when they are JSON) over `--params-json`."""
    params: dict[str, Any] = json.loads(params_json) if params_json else {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


@app.command("list")
def list_jobs(
    status: Annotated[list[str] | None, typer.Option("--status", help="repeatable")] = None,
    source: Annotated[str | None, typer.Option("--source", help="data source id")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many jobs")] = 20,
    local: Local = False,
    domain: Domain = None,
    as_json: AsJson = False,
) -> None:
    """The newest jobs, optionally filtered by status and data source."""
    emit(backend(local, domain).list(status or [], source, limit), as_json, print_jobs)


@app.command("show")
def show_job(
    job_id: JobId, local: Local = False, domain: Domain = None, as_json: AsJson = False
) -> None:
    """One job: status, progress, counters, error."""
    emit(backend(local, domain).get(job_id), as_json, print_job)


@app.command("create")
def create_job(
    source: Annotated[str, typer.Option("--source", help="data source id")],
    campaign: Annotated[str | None, typer.Option("--campaign", help="campaign id")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="key=value")] = None,
    params_json: Annotated[
        str | None, typer.Option("--params-json", help="all params as JSON: '{\"per_page\": 25}'")
    ] = None,
    start: Annotated[bool, typer.Option("--start", help="queue it at once")] = False,
    local: Local = False,
    domain: Domain = None,
    as_json: AsJson = False,
) -> None:
    """Create a job on a data source (pending unless --start)."""
    params = parse_params(param or [], params_json)
    emit(backend(local, domain).create(source, campaign, params, start), as_json, print_job)


def _move_command(move: str) -> None:
    def command(
        job_id: JobId, local: Local = False, domain: Domain = None, as_json: AsJson = False
    ) -> None:
        emit(backend(local, domain).move(job_id, move), as_json, print_job)

    # the help names the declared transitions, so a new status or move needs no text here
    command.__doc__ = f"{move.capitalize()} a job: " + "; ".join(
        f"{source} → {target}" for source, target in job_statuses.MOVES[move].to.items()
    )
    app.command(move)(command)


for _move in job_statuses.USER_MOVES:
    _move_command(_move)
