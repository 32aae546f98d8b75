"""`dashin sources list|test`: the domain's data sources, and a credentials/config check.

`test` runs the connector's `check` on the API side (the worker's network view and the stored,
decrypted credentials), prints the verdict and up to five sample leads, and exits 1 when the
check fails, so scripts can gate a run on it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.api_client import ApiClient

app = typer.Typer(help="Data sources: list them, test their credentials.", no_args_is_help=True)
console = Console()

Domain = Annotated[str | None, typer.Option("--domain", help="domain id or name")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.command("list")
def list_sources(
    type_: Annotated[str | None, typer.Option("--type", help="connector type")] = None,
    domain: Domain = None,
    as_json: AsJson = False,
) -> None:
    """Every data source of the domain with its run metrics."""
    with ApiClient.from_settings(domain) as client:
        sources = list(client.items("/data-sources", type=type_, sort="name"))
    if as_json:
        typer.echo(json.dumps(sources, indent=2))
        return
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
    console.print(table)


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
        console.print(table)


@app.command("test")
def test_source(source_id: str, domain: Domain = None, as_json: AsJson = False) -> None:
    """Check a source's credentials and config; exit 1 when the check fails."""
    with ApiClient.from_settings(domain) as client:
        result: dict[str, Any] = client.post(f"/data-sources/{source_id}/test")
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_check(result)
    if not result["ok"]:
        raise typer.Exit(1)
