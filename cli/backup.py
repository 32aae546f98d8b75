"""`dashin backup FILE [--verify]` and `dashin restore FILE`: pg_dump custom-format archives.

The archive machinery (finding tools, the snapshot-exact verify) is `runtime.backup`; the
scheduler uses it for nightly backups when `DASHIN_BACKUP_DIR` is set (docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from runtime.backup import Target, backup_verified, dump, restore, row_counts

__all__ = ["Target", "backup_command", "restore_command", "row_counts"]

console = Console()


def _database_target(database_url: str | None) -> Target:
    from runtime.settings import get_settings

    return Target.parse(database_url or get_settings().require_database_url())


DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="default: DATABASE_URL / .dashin/env")
]


def backup_command(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="archive to write (custom format)")],
    verify: Annotated[
        bool, typer.Option("--verify", help="restore into a scratch database and compare rows")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Back up the database to FILE (pg_dump custom format)."""
    target = _database_target(database_url)
    if not verify:
        dump(target, file)
        console.print(
            f"[green]backed up[/] {target.database} to {file} ({file.stat().st_size:,} bytes)"
        )
        return
    expected, restored = backup_verified(target, file)
    table = Table("table", "rows", "restored", title=f"backup {file}")
    bad = 0
    for name in sorted(set(expected) | set(restored)):
        want, got = expected.get(name), restored.get(name)
        ok = want == got
        bad += not ok
        table.add_row(name, str(want), f"[{'green' if ok else 'bold red'}]{got}[/]")
    console.print(table)
    if bad:
        console.print(f"[bold red]verify failed:[/] {bad} table(s) differ")
        raise typer.Exit(1)
    console.print(f"[green]verified:[/] {len(expected)} tables, {sum(expected.values()):,} rows")


def restore_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="archive to restore")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Restore FILE over the database (its tables are replaced). Stop API and workers first."""
    target = _database_target(database_url)
    if not yes:
        typer.confirm(f"replace every table of {target.database} with {file}?", abort=True)
    restore(target, file)
    with target.connect() as conn:
        counts = row_counts(conn)
    console.print(
        f"[green]restored[/] {file} into {target.database}: {sum(counts.values()):,} rows"
    )
