"""`dashin`: process commands (up, api, worker, scheduler, migrate, reap, config, services)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from runtime.errors import DashinError
from runtime.settings import Settings

app = typer.Typer(
    name="dashin",
    help="Dashin: lead-scraping jobs that pause, resume and survive crashes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
services_app = typer.Typer(help="Embedded PostgreSQL and Redis under ./.dashin.")
app.add_typer(services_app, name="services")
console = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    from runtime.logging import configure_logging
    from runtime.settings import get_settings

    settings = get_settings()
    configure_logging(settings)
    from runtime.sentry import init_sentry  # issue 8: optional error reporting (SENTRY_DSN)

    init_sentry(settings, component=sys.argv[1] if len(sys.argv) > 1 else "cli")
    return settings


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"dashin {version('dashin')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version_: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Dashin: lead-scraping jobs that pause, resume and survive crashes."""


@app.command()
def config(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Print the effective settings, secrets masked."""
    from cli.output import echo_json, print_table
    from runtime.settings import env_file_path, load_settings

    masked = load_settings().masked()
    if as_json:
        echo_json(masked)
        return
    table = Table("variable", "value", title=f"Dashin settings (env file: {env_file_path()})")
    for name, value in masked.items():
        table.add_row(name, value)
    print_table(table, console)


@app.command()
def migrate() -> None:
    """Apply database migrations up to the latest (idempotent)."""
    import migrations
    from runtime.logging import get_logger, use_json

    settings = _settings()
    migrations.upgrade(settings.require_database_url())
    if use_json(settings):  # `web: dashin migrate && dashin api`: one JSON stream
        get_logger("cli.migrate").info("migrate.done", message="database schema is up to date")
    else:
        console.print("[green]database schema is up to date[/]")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="DASHIN_API_WORKERS",
            help="uvicorn worker processes (default: one per CPU core, at most 4)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the control API (uvicorn); several processes share the port."""
    from cli.api_server import default_workers, serve

    _settings()
    serve(host, port, workers or default_workers())


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="comma-separated queues; default all")] = "",
    processes: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="threads per process (jobs at once)")] = 4,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve Prometheus worker metrics on this port")
    ] = None,
) -> None:
    """Run worker processes that execute scraping jobs."""
    if metrics_port:  # issue 8: before anything imports prometheus_client
        from workers import metrics

        metrics.enable()
        metrics.serve(metrics_port)
    from workers.worker import run_worker_pool

    _settings()
    if metrics_port and processes == 1:  # issue 8: a pool's children need the run_worker hook
        from runtime.broker import get_broker

        metrics.install_worker_metrics(get_broker())
    names = [q.strip() for q in queues.split(",") if q.strip()] or None
    run_worker_pool(names, processes, threads)


@app.command()
def scheduler() -> None:
    """Run the scheduler (leader-elected) and the reaper."""
    from scheduler.service import run_scheduler

    _settings()
    run_scheduler()


@app.command()
def reap() -> None:
    """Run the reaper once: re-queue jobs whose worker died or whose message was lost."""
    from runtime.db import get_engine
    from scheduler.outbox_sweep import sweep_outbox
    from scheduler.reaper import reap_once
    from workers.enqueue import install_doorbell

    settings = _settings()
    install_doorbell()  # events of the moves below are sent after their commit
    report = reap_once(get_engine(), settings)
    outbox = sweep_outbox(get_engine(), settings)
    console.print(
        f"reaped {len(report.reaped)}, re-enqueued {len(report.requeued)}, "
        f"resumed {len(report.resumed)}, outbox rows re-sent {outbox}"
    )


@app.command()
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would go; remove nothing.")
    ] = False,
) -> None:
    """Apply every domain's retention now (the scheduler also does, every 10 minutes)."""
    from runtime.db import get_engine
    from scheduler.purge import purge as run_purge

    _settings()
    report = run_purge(get_engine(), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    if not report.rows:
        console.print(f"nothing to purge ({verb} 0 rows)")
    for (domain, kind), rows in sorted(report.rows.items()):
        unit = "jobs" if kind == "finished_jobs" else ("files" if kind == "uploads" else "rows")
        console.print(f"{domain}: {kind} {verb} {rows} {unit}")


@app.command()
def up(
    host: Annotated[str, typer.Option(help="interface the API binds")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the API's port")] = 8000,
    threads: Annotated[int, typer.Option(help="worker threads")] = 4,
    services_only: Annotated[
        bool, typer.Option("--services-only", help="start services and migrate, then exit")
    ] = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="serve the sandbox emulators and run the demo")
    ] = False,
) -> None:
    """Start embedded PostgreSQL/Redis if not configured, migrate, run API + worker + scheduler."""
    import migrations
    from cli.services import ensure_services

    services = ensure_services()
    console.print(f"[bold]PostgreSQL[/] {services.database_url}")
    console.print(f"[bold]Redis[/]      {services.redis_url}")
    migrations.upgrade(services.database_url)
    console.print("[green]migrations applied[/]")
    from cli.bootstrap import print_bootstrap_key  # issue 8: admin key, made on first start
    from cli.welcome import client_host, remember_cli_settings

    api_url = f"http://{client_host(host)}:{port}"
    new_key = print_bootstrap_key(console, services.database_url)
    key = remember_cli_settings(api_url, new_key)  # issue 21: the CLI finds API and key
    if services_only:
        if services.embedded:
            console.print("services are running; stop them with `dashin services stop`")
        return
    try:
        _run_stack(host, port, threads, demo, api_url, key)
    finally:
        console.print("stopping PostgreSQL and Redis…" if services.embedded else "")
        services.stop()
        console.print("[green]stopped[/]")


def _run_stack(
    host: str, port: int, threads: int, demo: bool, api_url: str, key: str | None
) -> None:
    """API + worker + scheduler (and the demo's emulators) until Ctrl-C or a child exits."""
    import contextlib
    import functools

    from cli.demo import console_link, demo_env, emulators, start_in_background, wait_ready_then
    from cli.procs import ProcessGroup, dashin_argv
    from cli.welcome import print_next_steps

    group = ProcessGroup(console)
    group.install_signal_handlers()
    env = demo_env() if demo else None
    # the key is the platform admin's, whose own domain is empty: the link opens the demo's
    console_url = console_link(api_url) if demo else f"{api_url}/console"
    next_steps = functools.partial(print_next_steps, console, api_url, key, console_url)
    with contextlib.ExitStack() as stack:
        # issue 21: the sandbox lives as long as the stack, so its sources keep working
        emus = stack.enter_context(emulators()) if demo else None
        stack.callback(group.stop)
        # One API process is plenty next to a worker and the scheduler on one machine.
        api_argv = dashin_argv("api", "--host", host, "--port", str(port), "--workers", "1")
        group.start("api", api_argv, env, stops="open requests and log streams")
        group.start(
            "worker",
            dashin_argv("worker", "--threads", str(threads)),
            env,
            stops="running jobs to commit their current page and go back to the queue",
        )
        group.start("scheduler", dashin_argv("scheduler"), env, stops="its leader lock")
        console.print(f"[bold green]API[/]  {api_url}/api/v1   docs {api_url}/docs")
        if emus is not None:
            start_in_background(console, api_url, group.stopping, emus, then=next_steps)
        else:
            wait_ready_then(api_url, group.stopping, next_steps)
        group.wait()


@services_app.command("start")
def services_start() -> None:
    """Start the embedded services (those whose URL variables are unset) and migrate."""
    up(services_only=True)


@services_app.command("stop")
def services_stop() -> None:
    """Stop the embedded services started from this directory."""
    from cli.services import stop_embedded

    stopped = stop_embedded()
    console.print("stopped: " + (", ".join(stopped) or "nothing was running"))


@services_app.command("status")
def services_status() -> None:
    """Whether the embedded PostgreSQL and Redis of this directory are running."""
    from runtime.embedded import EmbeddedPostgres, EmbeddedRedis
    from runtime.settings import dashin_home

    home = dashin_home()
    for name, svc in (("postgres", EmbeddedPostgres(home)), ("redis", EmbeddedRedis(home))):
        state = "running" if svc.is_running() else "stopped"
        console.print(f"{name:9} {state}")


# --- operator commands (issue 8), each in its own module ---------------------------------------
def _register_operator_commands() -> None:
    from cli import backup, bootstrap, db, demo, imports, jobs, leads, logs, sources

    app.add_typer(jobs.app, name="jobs")
    app.add_typer(sources.app, name="sources")
    app.add_typer(leads.app, name="leads")
    app.command("logs")(logs.logs_command)
    app.command("import-csv")(imports.import_csv_command)
    app.command("demo")(demo.demo_command)
    app.command("backup")(backup.backup_command)
    app.command("restore")(backup.restore_command)
    app.command("psql")(db.psql_command)
    app.command("db-url")(db.db_url_command)
    app.command("admin-key")(bootstrap.admin_key_command)


_register_operator_commands()


def main() -> None:
    try:
        app()
    except DashinError as exc:
        err.print(f"[bold red]error:[/] {exc.message}")
        sys.exit(1)


if __name__ == "__main__":
    main()
