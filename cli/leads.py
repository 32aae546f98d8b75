"""`dashin leads export`: the domain's leads as CSV or JSON lines, through the API.

The API's `GET /leads/export` streams `COPY … TO STDOUT` (flat memory on both sides), and
applies the caller's role: a member exports only the leads of own campaigns or assigned to
them, exactly as the list shows them. The filters are the list's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from cli.api_client import ApiClient

app = typer.Typer(help="Read the domain's leads.", no_args_is_help=True)


@app.command("export")
def export_command(
    format: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")
    ] = None,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    priority: Annotated[str | None, typer.Option(help="only this priority")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="campaign id")] = None,
    source: Annotated[str | None, typer.Option("--source", help="data source id")] = None,
    tag: Annotated[str | None, typer.Option(help="only leads with this tag")] = None,
    q: Annotated[str | None, typer.Option("--q", help="search name, email, company")] = None,
    domain: Annotated[
        str | None, typer.Option("--domain", help="act in this domain (id or name)")
    ] = None,
) -> None:
    """Write every matching lead (`dashin leads export --format jsonl -o leads.jsonl`)."""
    params = {
        "format": format,
        "status": status,
        "priority": priority,
        "campaign_id": campaign,
        "data_source_id": source,
        "tag": tag,
        "q": q,
    }
    with ApiClient.from_settings(domain) as client:
        if output is None:
            out: BinaryIO = sys.stdout.buffer
            client.download("/leads/export", out, **params)
            out.flush()
            return
        with output.open("wb") as out:
            written = client.download("/leads/export", out, **params)
        typer.echo(f"wrote {written:,} bytes to {output}", err=True)
