"""`dashin demo` and `dashin up --demo`: the main job end to end, in well under a minute.

Against a running stack (the API at `DASHIN_API_URL`, or the one `up` just started) it:

1. signs up (or logs in) a demo user who founds the domain `demo.dashin.dev`;
2. creates a campaign, a CSV data source holding the bundled sample (`cli/data/`), and sandbox
   provider sources served by the shipped emulators (`connectors.sandbox`) on 127.0.0.1;
3. tests each source, starts one job per source and shows live progress bars;
4. pauses the Apollo job after a couple of pages, shows it paused, resumes it from its checkpoint;
5. prints a summary of what every job wrote and a table of the newest leads.

The emulators are threads of the process that starts them. `dashin up --demo` starts them
before the stack and stops them after it, so the sandbox sources answer "Test connection" and new
jobs for as long as the stack runs; a lone `dashin demo` serves them only while it runs. Their
names end in "sandbox", and the demo says what they are. Workers reach them only when
`DASHIN_SSRF_ALLOW` covers 127.0.0.0/8: `up --demo` passes that to its children (`demo_env`); a
stack started otherwise fails the source tests, and the demo says so.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from cli.api_client import ApiClient, ApiError, ApiUnavailable
from cli.output import print_table
from cli.progress import JobBars, Jobs

DEMO_EMAIL = "demo@demo.dashin.dev"
DEMO_DOMAIN = "demo.dashin.dev"
DEMO_PASSWORD = "dashin-demo-password"  # a local demo account, documented in the README
LOOPBACK = "127.0.0.0/8"
SAMPLE = "leads_sample.csv"
APOLLO_SANDBOX = "Apollo sandbox"
#: a sandbox that answers slowly, so a newcomer can follow a job in the console and pause it
SLOW_SANDBOX = "Apollo sandbox (slow: try pause and resume)"
LINKEDIN_SANDBOX = "LinkedIn sandbox"
Emulators = dict[str, Any]


def console_link(api_url: str, page: str | None = None) -> str:
    """The console's sign-in page that starts the session in the demo's domain, then opens
    `page`: `up`'s key is the platform admin's, whose own domain has nothing to show."""
    query = {"domain": DEMO_DOMAIN, **({"next": page} if page else {})}
    return f"{api_url}/console/login?{urlencode(query, safe='/')}"


def demo_env() -> dict[str, str]:
    """Environment for the stack's children: the emulators' loopback address allowed."""
    current = [p.strip() for p in os.environ.get("DASHIN_SSRF_ALLOW", "").split(",") if p.strip()]
    return {
        "DASHIN_SSRF_ALLOW": ",".join([*current, LOOPBACK] if LOOPBACK not in current else current)
    }


@contextmanager
def emulators() -> Iterator[Emulators]:
    """Apollo and LinkedIn emulators with small datasets and a little latency (visible pages)."""
    from connectors.sandbox.apollo import ApolloEmulator
    from connectors.sandbox.linkedin import LinkedInEmulator

    apollo = ApolloEmulator(people=600, seed=7, latency_ms=120)
    linkedin = LinkedInEmulator(leads=300, seed=7, latency_ms=60)
    slow = ApolloEmulator(people=2000, seed=11, latency_ms=1500)
    for emulator in (apollo, linkedin, slow):
        emulator.start()
    try:
        yield {"apollo": apollo, "linkedin": linkedin, "apollo_slow": slow}
    finally:
        for emulator in (apollo, linkedin, slow):
            emulator.stop()


def wait_ready(client: ApiClient, timeout_s: float = 90.0) -> None:
    """Until `/readyz` answers 200 (the API process is starting, or its services are)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.get("/readyz")
            return
        except (ApiUnavailable, ApiError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def wait_ready_then(
    api_url: str, stopping: threading.Event, then: Callable[[], None]
) -> threading.Thread:
    """For `up`: run `then` (the next steps) once the API answers, from a background thread."""

    def target() -> None:
        with ApiClient(api_url, None) as client:
            try:
                wait_ready(client)
            except ApiError:
                return  # the API never came up: its own output says why
        if not stopping.is_set():
            then()

    thread = threading.Thread(target=target, name="dashin-ready", daemon=True)
    thread.start()
    return thread


def sign_in(client: ApiClient) -> None:
    """Found the demo domain on first run; log in on later runs."""
    body = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "domain_name": DEMO_DOMAIN}
    try:
        answer = client.post("/auth/signup", {**body, "full_name": "Demo user"})
    except ApiError as exc:
        if exc.status != 409:
            raise
        answer = client.post("/auth/login", {"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
    client.set_token(answer["access_token"])
    client.set_domain(DEMO_DOMAIN)


def _find_or_create(client: ApiClient, path: str, name: str, body: dict[str, Any]) -> Any:
    for item in client.items(path):
        if item["name"] == name:
            if body.get("config"):  # emulator ports change between runs
                return client.request(
                    "PATCH", f"{path}/{item['id']}", json={"config": body["config"]}
                )
            return item
    return client.post(path, {"name": name, **body})


def create_sources(client: ApiClient, emus: Emulators) -> dict[str, dict[str, Any]]:
    csv_source = _find_or_create(client, "/data-sources", "Demo CSV", {"type": "csv", "config": {}})
    sample = resources.files("cli").joinpath("data", SAMPLE)
    with sample.open("rb") as fh:
        upload = client.post(
            f"/data-sources/{csv_source['id']}/files", files={"file": (SAMPLE, fh, "text/csv")}
        )
    apollo = _find_or_create(
        client,
        "/data-sources",
        APOLLO_SANDBOX,
        {
            "type": "apollo",
            "config": {
                "api_key": "apollo-test-key",
                "base_url": emus["apollo"].url + "/api/v1",
                "search_hourly_limit": None,
            },
        },
    )
    linkedin = _find_or_create(
        client,
        "/data-sources",
        LINKEDIN_SANDBOX,
        {
            "type": "linkedin",
            "config": {
                "access_token": "linkedin-test-token",
                "sponsored_account_id": "123",
                "base_url": emus["linkedin"].url,
                "page_size": 50,
            },
        },
    )
    return {
        "csv": {"source": csv_source, "params": {"file_id": upload["id"]}},
        "apollo": {"source": apollo, "params": {"per_page": 25}},
        "linkedin": {"source": linkedin, "params": {}},
    }


def start_slow_job(client: ApiClient, emus: Emulators) -> Any:
    """A job of 200 slow pages (about five minutes) to follow, pause and resume in the console."""
    source = _find_or_create(
        client,
        "/data-sources",
        SLOW_SANDBOX,
        {
            "type": "apollo",
            "config": {
                "api_key": "apollo-test-key",
                "base_url": emus["apollo_slow"].url + "/api/v1",
                "search_hourly_limit": None,
            },
        },
    )
    body = {"data_source_id": source["id"], "params": {"per_page": 10}, "start": True}
    return client.post("/jobs", body)


def check_sources(client: ApiClient, console: Console, plan: dict[str, dict[str, Any]]) -> bool:
    ok = True
    for entry in plan.values():
        result = client.post(f"/data-sources/{entry['source']['id']}/test")
        mark = "[green]✓[/]" if result["ok"] else "[red]✗[/]"
        message = str(result["message"])
        shown = message if len(message) <= 70 else message[:67] + "…"
        console.print(f"  {mark} {entry['source']['name']}: {shown}")
        ok = ok and bool(result["ok"])
    if not ok:
        console.print(
            "[yellow]a source check failed: the stack must allow the emulators' address "
            f"(DASHIN_SSRF_ALLOW={LOOPBACK}); `dashin up --demo` sets it[/]"
        )
    return ok


def _pages(jobs: Jobs, job_id: str) -> int:
    return int(jobs[job_id]["counters"]["pages"])


def run_jobs(
    client: ApiClient, console: Console, plan: dict[str, dict[str, Any]], campaign: str
) -> Jobs:
    jobs = {
        name: client.post(
            "/jobs",
            {
                "data_source_id": entry["source"]["id"],
                "campaign_id": campaign,
                "params": entry["params"],
                "start": True,
            },
        )["id"]
        for name, entry in plan.items()
    }
    apollo = jobs["apollo"]
    with JobBars(client, console) as bars:
        for name, job_id in jobs.items():
            bars.add(job_id, plan[name]["source"]["name"][:22])
        bars.wait(
            lambda js: _pages(js, apollo) >= 2 or js[apollo]["status"] in ("completed", "failed")
        )
        if bars.jobs[apollo]["status"] == "running":
            client.post(f"/jobs/{apollo}/pause")
            paused = bars.wait(lambda js: js[apollo]["status"] in ("paused", "completed", "failed"))
            bars.progress.console.print(
                f"[yellow]⏸  paused the Apollo job after page {_pages(paused, apollo)} "
                "(its checkpoint is committed); resuming…[/]"
            )
            if paused[apollo]["status"] == "paused":
                client.post(f"/jobs/{apollo}/resume")
        return bars.wait_all_done(timeout_s=120)


def print_summary(console: Console, plan: dict[str, dict[str, Any]], jobs: Jobs) -> None:
    by_source = {entry["source"]["id"]: entry["source"]["name"] for entry in plan.values()}
    columns = ("source", "status", "pages", "fetched", "new", "updated", "unchanged", "rejected")
    table = Table(*columns, title="Jobs", box=box.SIMPLE_HEAD)
    for job in jobs.values():
        c = job["counters"]
        table.add_row(
            by_source.get(job["data_source_id"], "?"),
            job["status"],
            *(
                str(c[k])
                for k in ("pages", "fetched", "inserted", "updated", "unchanged", "rejected")
            ),
        )
    print_table(table, console)


def print_leads(console: Console, domain_name: str, limit: int = 10) -> None:
    """The newest leads of the demo domain, read from the database when it is reachable here."""
    try:
        from models import leads_repo
        from runtime.db import session_scope

        with session_scope() as session:
            total, rows = leads_repo.newest_of_domain(session, domain_name, limit)
            table = Table(
                "name",
                "email",
                "title",
                "company",
                title=f"Leads: {total} in {domain_name}, a few of the newest",
                box=box.SIMPLE_HEAD,
            )
            for lead in rows:
                name = " ".join(p for p in (lead.first_name, lead.last_name) if p)
                table.add_row(name, lead.email or "", lead.title or "", lead.company_name or "")
    except Exception as exc:  # the demo can run where only the API is reachable
        console.print(
            f"[dim]leads table skipped (database not reachable here: {type(exc).__name__})[/]"
        )
        return
    print_table(table, console)


def run_demo(client: ApiClient, console: Console, emus: Emulators | None = None) -> Jobs:
    """The whole demo against the API `client` points at; returns the jobs as they ended.

    `emus`: emulators that outlive the demo (`up --demo`); None starts some for the demo only.
    """
    started = time.monotonic()
    console.rule("[bold]Dashin demo")
    wait_ready(client)
    sign_in(client)
    console.print(
        f"signed in as [bold]{DEMO_EMAIL}[/] (password {DEMO_PASSWORD!r}) in {DEMO_DOMAIN}"
    )
    campaign = _find_or_create(client, "/campaigns", "Demo campaign", {"source": "demo"})
    with contextlib.ExitStack() as stack:
        if emus is None:
            emus = stack.enter_context(emulators())
            lifetime = "while this demo runs"
        else:
            lifetime = "for as long as this `dashin up` runs"
        plan = create_sources(client, emus)
        console.print(
            f"data sources ({APOLLO_SANDBOX!r} and {LINKEDIN_SANDBOX!r} are sandboxes: emulators "
            f"with made-up people on 127.0.0.1, serving {lifetime}):"
        )
        if not check_sources(client, console, plan):
            raise typer.Exit(1)
        jobs = run_jobs(client, console, plan, campaign["id"])
    print_summary(console, plan, jobs)
    print_leads(console, DEMO_DOMAIN)
    console.print(f"[bold green]demo finished in {time.monotonic() - started:.1f}s[/]")
    return jobs


def start_in_background(
    console: Console,
    api_url: str,
    stopping: threading.Event,
    emus: Emulators,
    then: Callable[[], None],
) -> threading.Thread:
    """For `up --demo`: run the demo once the API answers, without blocking the stack; `then`
    runs after it (the next steps), whatever the demo's outcome."""

    def target() -> None:
        try:
            with ApiClient(api_url, None) as client:
                run_demo(client, console, emus)
                slow = start_slow_job(client, emus)
            link = console_link(api_url, f"/console/jobs/{slow['id']}")
            console.print(
                f"a slow sandbox job is running for a few minutes: follow it, pause and resume it "
                f"at {link} (sign in with {DEMO_EMAIL} / {DEMO_PASSWORD!r}, or the API key below)",
                soft_wrap=True,
            )
            console.print(
                f"the demo's jobs, sources and leads are in the domain {DEMO_DOMAIN}: "
                f"`dashin jobs list --domain {DEMO_DOMAIN}`",
                soft_wrap=True,
            )
        except (ApiError, TimeoutError, typer.Exit) as exc:
            if not stopping.is_set():
                console.print(f"[bold red]demo failed:[/] {exc}")
        if not stopping.is_set():
            then()

    thread = threading.Thread(target=target, name="dashin-demo", daemon=True)
    thread.start()
    return thread


def demo_command(
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="default: DASHIN_API_URL")
    ] = None,
) -> None:
    """Run the demo against a running stack (started with `dashin up --demo` or its settings)."""
    from runtime.settings import get_settings

    url = api_url or get_settings().api_url
    console = Console()
    with ApiClient(url, None) as client:
        jobs = run_demo(client, console)
    if any(job["status"] != "completed" for job in jobs.values()):
        raise typer.Exit(1)
