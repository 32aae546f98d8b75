"""`dashin logs`: under a real pseudo-terminal against a live API and worker, resuming after a
connection drop (through a TCP proxy that cuts every connection), and plain paging."""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from cli.api_client import ApiClient
from cli.logs import LogTail, parse_since
from cli.main import app
from tests.cli.conftest import ROOT, CliUser, LiveApi, Proc, await_job_status
from tests.cli.ptyrun import PtyProcess, strip_ansi
from tests.tcpproxy import TcpProxy


@pytest.fixture
def api(live_api: LiveApi, cli_user: CliUser) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {cli_user.key}"}
    with httpx.Client(base_url=live_api.url + "/api/v1", headers=headers, timeout=30) as client:
        yield client


def create_job(api: httpx.Client, source: uuid.UUID, **params: Any) -> str:
    response = api.post("/jobs", json={"data_source_id": str(source), "params": params})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def follow_under_pty(
    job_id: str, live_env: dict[str, str], live_api: LiveApi, user: CliUser, *args: str
) -> PtyProcess:
    env = {**live_env, "DASHIN_API_URL": live_api.url, "DASHIN_API_KEY": user.key}
    argv = [sys.executable, "-m", "cli.main", "logs", job_id, "--follow", *args]
    return PtyProcess(argv, env, str(ROOT))


def committed_checkpoints(text: str) -> list[int]:
    return [int(m) for m in re.findall(r'page\.committed.*?checkpoint=\{"next":(\d+)\}', text)]


def assert_chained(checkpoints: list[int], page_size: int, total: int) -> None:
    """Commits may carry several pages when the database is the slower side (the runner merges
    pages that are already fetched), so the lines chain page boundaries rather than count pages."""
    assert checkpoints == sorted(set(checkpoints)), checkpoints
    assert checkpoints[-1] == total and all(c % page_size == 0 for c in checkpoints)


def test_follow_under_a_terminal_prints_lines_in_order_and_exits_0_when_completed(
    api: httpx.Client,
    live_api: LiveApi,
    worker: Proc,
    live_env: dict[str, str],
    cli_user: CliUser,
    synthetic_source: uuid.UUID,
) -> None:
    # Given a pending job of 20 pages and `dashin logs --follow` attached to it in a terminal
    job_id = create_job(api, synthetic_source, total=400, page_size=20, delay_s=0.05)
    tail = follow_under_pty(job_id, live_env, live_api, cli_user)
    try:
        tail.expect("following job")
        # When the job runs
        assert api.post(f"/jobs/{job_id}/start").status_code == 202
        code = tail.finish()
    finally:
        tail.kill()
    # Then every page arrives once, in commit order, coloured, and the exit code is 0
    text = strip_ansi(tail.text)
    assert code == 0, tail.text
    assert_chained(committed_checkpoints(text), 20, 400)
    assert text.index("job.started") < text.index("page.committed")
    assert f"job {job_id} completed" in text
    assert "\x1b[" in tail.text  # a terminal gets colour


def test_follow_json_under_a_terminal_emits_every_seq_once(
    api: httpx.Client,
    live_api: LiveApi,
    worker: Proc,
    live_env: dict[str, str],
    cli_user: CliUser,
    synthetic_source: uuid.UUID,
) -> None:
    job_id = create_job(api, synthetic_source, total=200, page_size=20, delay_s=0.02)
    tail = follow_under_pty(job_id, live_env, live_api, cli_user, "--json")
    try:
        tail.expect("following job")
        api.post(f"/jobs/{job_id}/start")
        code = tail.finish()
    finally:
        tail.kill()
    lines = [json.loads(x) for x in strip_ansi(tail.text).splitlines() if x.startswith("{")]
    seqs = [line["seq"] for line in lines]
    assert code == 0
    assert seqs == list(range(1, len(seqs) + 1))
    committed = [line["fields"] for line in lines if line["event"] == "page.committed"]
    assert sum(c["pages"] for c in committed) == 10 and sum(c["fetched"] for c in committed) == 200
    assert_chained([c["checkpoint"]["next"] for c in committed], 20, 200)
    assert lines[-1]["event"] == "job.finish"


def test_follow_exits_3_when_the_job_is_cancelled(
    api: httpx.Client,
    live_api: LiveApi,
    worker: Proc,
    live_env: dict[str, str],
    cli_user: CliUser,
    synthetic_source: uuid.UUID,
) -> None:
    job_id = create_job(api, synthetic_source, total=100_000, page_size=20, delay_s=0.1)
    api.post(f"/jobs/{job_id}/start")
    tail = follow_under_pty(job_id, live_env, live_api, cli_user)
    try:
        tail.expect("page.committed")  # the job is running and the tail is live
        assert api.post(f"/jobs/{job_id}/cancel").status_code == 202
        code = tail.finish()
    finally:
        tail.kill()
    assert code == 3, tail.text
    assert f"job {job_id} cancelled" in strip_ansi(tail.text)


def test_follow_prints_a_completed_jobs_warnings_last_and_exits_0(
    api: httpx.Client,
    worker: Proc,
    cli_env: dict[str, str],
    db_url: str,
    synthetic_source: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a job that completed with one record in ten rejected
    monkeypatch.setenv("COLUMNS", "300")  # keep each warning on one line
    job_id = create_job(api, synthetic_source, total=100, page_size=20, bad_every=10)
    assert api.post(f"/jobs/{job_id}/start").status_code == 202
    assert await_job_status(db_url, job_id, {"completed", "failed"}) == "completed"
    # When its log is followed, and the job shown
    followed = CliRunner().invoke(app, ["logs", job_id, "--follow"])
    shown = CliRunner().invoke(app, ["jobs", "show", job_id])
    # Then the warning comes after every log line, and the exit code is still 0
    assert followed.exit_code == 0, followed.output
    warning = "warning: records_rejected (10): 10 of 100 fetched records were rejected"
    assert warning in followed.output
    assert followed.output.index(warning) > followed.output.rindex("job.finish")
    assert shown.exit_code == 0 and "records_rejected (10): 10 of 100" in shown.output


def _await_more_log_lines(db_url: str, job_id: str, count: int) -> None:
    """Block until the job has committed `count` more log transactions (LISTEN, no polling)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("LISTEN job_logs")
        seen = 0
        for note in conn.notifies(timeout=60):
            if note.payload.startswith(job_id):
                seen += 1
                if seen >= count:
                    return
    raise TimeoutError("the job wrote no more log lines")


def test_follow_resumes_after_a_connection_drop_without_gaps_or_repeats(
    api: httpx.Client,
    live_api: LiveApi,
    worker: Proc,
    db_url: str,
    cli_user: CliUser,
    synthetic_source: uuid.UUID,
) -> None:
    # Given a tail reading the stream through a proxy that can cut the connection
    proxy = TcpProxy("127.0.0.1", live_api.port)
    job_id = create_job(api, synthetic_source, total=600, page_size=20, delay_s=0.05)
    printed: list[int] = []
    first_lines = threading.Event()
    dropped = threading.Event()
    notices: list[str] = []

    def write(line: dict[str, Any]) -> None:
        printed.append(int(line["seq"]))
        if line["event"] == "page.committed":
            first_lines.set()

    def notice(message: str) -> None:
        notices.append(message)
        if "connection lost" in message:
            dropped.set()

    client = ApiClient(f"http://127.0.0.1:{proxy.port}", cli_user.key)
    tail = LogTail(client, job_id, level=None, since=None, write=write, notice=notice)
    result: dict[str, str | None] = {}
    thread = threading.Thread(target=lambda: result.update(status=tail.follow()), daemon=True)
    try:
        api.post(f"/jobs/{job_id}/start")
        thread.start()
        assert first_lines.wait(60)
        # When every connection is cut mid-stream and stays down while the job keeps writing
        proxy.outage()
        assert dropped.wait(30)
        before_recovery = len(printed)
        _await_more_log_lines(db_url, job_id, 3)
        proxy.recover()
        thread.join(120)
    finally:
        proxy.close()
        client.close()
    # Then the tail reconnected and printed every seq exactly once, through to the end
    assert not thread.is_alive()
    assert result["status"] == "completed"
    assert tail.reconnects >= 1
    assert tail.repeats == 0
    assert printed == list(range(1, len(printed) + 1))
    assert len(printed) > before_recovery
    job = api.get(f"/jobs/{job_id}").json()
    assert job["counters"]["pages"] == 30


def test_logs_without_follow_pages_through_what_is_there_with_level_and_json(
    api: httpx.Client,
    cli_env: dict[str, str],
    worker: Proc,
    synthetic_source: uuid.UUID,
) -> None:
    job_id = create_job(api, synthetic_source, total=60, page_size=20, bad_every=7)
    api.post(f"/jobs/{job_id}/start")
    runner = CliRunner()
    follow = runner.invoke(app, ["logs", job_id, "--follow", "--json"])
    assert follow.exit_code == 0, follow.output

    everything = runner.invoke(app, ["logs", job_id, "--json"])
    warnings = runner.invoke(app, ["logs", job_id, "--json", "--level", "warning"])
    future = runner.invoke(app, ["logs", job_id, "--json", "--since", "2999-01-01T00:00:00"])
    human = runner.invoke(app, ["logs", job_id])

    lines = [json.loads(x) for x in everything.stdout.splitlines()]
    assert [x["seq"] for x in lines] == list(range(1, len(lines) + 1))
    # three provider pages, each in exactly one commit (small pages may share one)
    assert sum(x["fields"]["pages"] for x in lines if x["event"] == "page.committed") == 3
    graver = [json.loads(x)["level"] for x in warnings.stdout.splitlines()]
    assert len(graver) < len(lines) and set(graver) <= {"warning", "error"}
    assert future.stdout == ""
    assert "page.committed" in human.stdout and everything.exit_code == 0


def test_logs_of_an_unknown_job_exits_4_with_a_readable_problem(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["logs", str(uuid.uuid4()), "--follow"])
    assert result.exit_code == 4
    assert "404" in result.output and "not found" in result.output


def test_parse_since_accepts_durations_and_timestamps() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_since("15m", now) == now - timedelta(minutes=15)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("2024-05-01T10:00:00") == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert parse_since(None) is None
