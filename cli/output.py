"""Printing for the `dashin` commands: tables that keep every column when piped, JSON output.

Rich sizes output to the terminal, and to 80 columns when stdout is a pipe or a file, so
`dashin jobs list | grep failed` would cut ids and wrap cells. `print_table` gives a table the
width it needs when there is no terminal to fit (`COLUMNS` still wins when set); `emit` is the
one switch between `--json` and a rendering.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

T = TypeVar("T")
UNBOUNDED = 10_000  # wide enough for any table's natural width


def print_table(table: Table, console: Console | None = None) -> None:
    """Print `table` fitted to the terminal, or at its natural width when piped."""
    console = console or Console()
    if console.is_terminal or os.environ.get("COLUMNS"):
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update(max_width=UNBOUNDED), table)
    fitted = console.width
    console.width = max(natural.maximum, fitted)
    try:
        console.print(table)
    finally:
        console.width = fitted


def emit(data: T, as_json: bool, render: Callable[[T], None]) -> None:
    """`--json`: the wire shape, indented; else the human rendering."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        render(data)


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
