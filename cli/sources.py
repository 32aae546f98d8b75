"""`dashin sources list|test`: the domain's data sources, and a credentials/config check.

`list --local` reads every domain's sources from the database (`cli.local_reads`). `test` takes
a source's id or its name, runs the connector's `check` on the API side (the worker's network
view and the stored, decrypted credentials), prints the verdict and up to five sample leads,
and exits 1 when the check fails, so scripts can gate a run on it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.api_client import ApiClient, ApiError
from cli.output import echo_json, emit, print_table

app = typer.Typer(help="Data sources: list them, test their credentials.", no_args_is_help=True)
console = Console()

Domain = Annotated[
    str | None, typer.Option("--domain", help="act in this domain (id or name): demo.dashin.dev")
]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.command("list")
def list_sources(
    type_: Annotated[str | None, typer.Option("--type", help="connector type")] = None,
    domain: Domain = None,
    as_json: AsJson = False,
    local: Annotated[
        bool, typer.Option("--local", help="every domain's, from the database, not the API")
    ] = False,
) -> None:
    """Every data source of the domain with its run metrics."""
    if local:
        from cli.local_reads import list_sources as local_sources

        sources = local_sources(type_)
    else:
        with ApiClient.from_settings(domain) as client:
            sources = list(client.items("/data-sources", type=type_, sort="name"))
    emit(sources, as_json, print_sources)


def print_sources(sources: list[dict[str, Any]]) -> None:
    table = Table("id", "type", "name", "jobs", "failed", "leads", "last run", "last error")
    for src in sources:
        m = src["metrics"]
        table.add_row(
            src["id"],
            src["type"],
            src["name"],
            str(m["jobs_total"]),
            str(m["jobs_failed"]),
            str(m["leads_total"]),
            (m["last_run_at"] or "-")[:19].replace("T", " "),
            (m["last_error"] or "")[:60],
        )
    print_table(table, console)


def print_check(result: dict[str, Any]) -> None:
    verdict = "[bold green]ok[/]" if result["ok"] else f"[bold red]failed[/] ({result['reason']})"
    console.print(f"{verdict}: {result['message']}")
    if result["sample"]:
        table = Table("name", "email", "title", "company")
        for lead in result["sample"]:
            name = " ".join(p for p in (lead.get("first_name"), lead.get("last_name")) if p)
            table.add_row(
                name,
                lead.get("email") or "",
                lead.get("title") or "",
                lead.get("company_name") or "",
            )
        print_table(table, console)


def source_id_for(client: ApiClient, ref: str) -> str:
    """A source's id from its id or its exact name (names are what people remember)."""
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    for item in client.items("/data-sources", sort="name"):
        if item["name"] == ref:
            return str(item["id"])
    raise ApiError(404, {"title": "Not Found", "detail": f"no data source named {ref!r}"})


@app.command("test")
def test_source(
    source: Annotated[str, typer.Argument(help="the data source's id or name")],
    domain: Domain = None,
    as_json: AsJson = False,
) -> None:
    """Check a source's credentials and config; exit 1 when the check fails."""
    with ApiClient.from_settings(domain) as client:
        source_id = source_id_for(client, source)
        result: dict[str, Any] = client.post(f"/data-sources/{source_id}/test")
    if as_json:
        echo_json(result)
    else:
        print_check(result)
    if not result["ok"]:
        raise typer.Exit(1)
