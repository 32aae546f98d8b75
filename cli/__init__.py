"""The `dashin` command (Typer)."""
