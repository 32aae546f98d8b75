"""What `dashin up` tells a newcomer last: how to reach `dashin`, the API key, the console.

`up` runs as `.venv/bin/dashin` (or through `./run`) in a shell whose PATH usually lacks the
virtual environment, so the first `dashin jobs list` would say "command not found". The lines
printed here are the three things needed next, each one copy-pastable. `remember_cli_settings`
writes the API URL and the bootstrap key into `.dashin/env` (0600, next to the secret key that
already lives there), so `dashin` commands run in this directory need no exports at all.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from rich.console import Console

from runtime.embedded import read_env_file, write_env_file
from runtime.settings import env_file_path, reset_settings_cache


def client_host(host: str) -> str:
    """The address a local client uses for a bind address (`0.0.0.0` and `::` are no target)."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def path_hint() -> str:
    """The shell line that puts this `dashin` on the PATH, or a note that it already is."""
    bin_dir = Path(sys.executable).parent
    on_path = shutil.which("dashin")
    if on_path and Path(on_path).resolve().parent == bin_dir.resolve():
        return "dashin is on your PATH already"
    local = Path.cwd() / ".venv"  # `./run`'s venv: shown relative, as the README says it
    if (local / "bin" / "activate").exists() and local.resolve() == bin_dir.parent.resolve():
        return "source .venv/bin/activate"
    activate = bin_dir / "activate"
    if activate.exists():
        try:
            shown = str(activate.relative_to(Path.cwd()))
        except ValueError:
            shown = str(activate)
        return f"source {shown}"
    return f'export PATH="{bin_dir}:$PATH"'


def remember_cli_settings(api_url: str, new_key: str | None) -> str | None:
    """Record the API URL (and a new bootstrap key) in `.dashin/env` for the CLI; return the key
    the CLI will use: the environment's `DASHIN_API_KEY`, else the recorded one."""
    updates = {"DASHIN_API_URL": api_url} if "DASHIN_API_URL" not in os.environ else {}
    if new_key is not None:
        updates["DASHIN_API_KEY"] = new_key
    if updates:
        write_env_file(env_file_path(), updates)
        reset_settings_cache()
    return os.environ.get("DASHIN_API_KEY") or read_env_file(env_file_path()).get("DASHIN_API_KEY")


def print_next_steps(
    console: Console, api_url: str, key: str | None, console_url: str | None = None
) -> None:
    """The closing lines of `dashin up`: PATH, API key, console URL (`console_url`: the one to
    open, `up --demo`'s signs in to the demo's domain)."""
    if key:
        key_line = (
            f"export DASHIN_API_KEY={key}   "
            f"[dim](dashin commands run in this directory read it from {env_file_path()})[/]"
        )
    else:
        key_line = "not known here: the first `dashin up` printed it; `dashin admin-key` makes one"
    console.rule("[bold]next")
    console.print(f"  [bold]dashin on PATH[/]  {path_hint()}", soft_wrap=True)
    console.print(f"  [bold]API key[/]         {key_line}", soft_wrap=True)
    hint = "   [dim](sign in with the API key above)[/]" if key else ""
    console.print(
        f"  [bold]console[/]         {console_url or api_url + '/console'}{hint}", soft_wrap=True
    )
    console.print("  Ctrl-C stops the stack", style="dim")
