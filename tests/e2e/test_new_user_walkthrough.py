"""A new user's first import, over HTTP only: sign up, CSV source, upload, job, live log, counters.

The same walkthrough exists as curl commands in `docs/api.md` and as `scripts/api_walkthrough.sh`;
the tests here run that script too (with jq and with its `python3 -c` fallback), and check that
every curl command of the script is printed verbatim in the docs, so neither can rot.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.sse_client import Event, read_events
from tests.cli.conftest import ROOT, LiveApi, Proc
from tests.e2e.conftest import ApiUser

SAMPLE = ROOT / "tests" / "connectors" / "data" / "leads_sample.csv"
SCRIPT = ROOT / "scripts" / "api_walkthrough.sh"
DOCS = ROOT / "docs" / "api.md"
ROWS = 250


def distinct_people(path: Path) -> int:
    """People in the file, counted independently of the product: rows sharing an email (any
    case) or a LinkedIn URL are one person; an email without `@` (`n/a`) is no email."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            email = row["Email"].strip().lower()
            keys = [f"email:{email}"] if "@" in email else []
            if url := row["LinkedIn URL"].strip().rstrip("/").lower():
                keys.append(f"li:{url}")
            assert keys, f"a sample row without any identity: {row}"
            for key in keys[1:]:
                parent[find(key)] = find(keys[0])
            find(keys[0])
    return len({find(key) for key in parent})


def log_events(events: list[Event]) -> list[dict[str, Any]]:
    return [e.json() for e in events if e.event == "log"]


def read_stream(client: httpx.Client, job_id: str, **headers: str) -> list[Event]:
    """The whole SSE log stream of a job; it ends on its own once the job is over."""
    timeout = httpx.Timeout(30.0, read=60.0)  # keep-alive comments arrive every 15 s
    with client.stream(
        "GET", f"/jobs/{job_id}/logs/stream", headers=headers, timeout=timeout
    ) as response:
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [e for e in read_events(response) if e.comment is None]


@pytest.mark.slow
def test_a_new_user_imports_a_csv_and_follows_the_job_live(
    live_api: LiveApi, e2e_worker: Proc, new_user: ApiUser
) -> None:
    api = new_user.client
    me = api.get("/me").json()
    assert [(m["domain_name"], m["role"]) for m in me["memberships"]] == [
        (new_user.domain_name, "manager")
    ]

    source = api.post("/data-sources", json={"type": "csv", "name": "Trade show leads"})
    assert source.status_code == 201, source.text
    source_id = source.json()["id"]
    with SAMPLE.open("rb") as handle:
        upload = api.post(
            f"/data-sources/{source_id}/files",
            files={"file": ("leads_sample.csv", handle, "text/csv")},
        )
    assert upload.status_code == 201, upload.text
    assert upload.json()["size"] == SAMPLE.stat().st_size

    created = api.post(
        "/jobs",
        json={
            "data_source_id": source_id,
            "params": {"file_id": upload.json()["id"], "page_size": 50},
        },
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert created.json()["status"] == "pending"
    started = api.post(f"/jobs/{job_id}/start")
    assert started.status_code == 202, started.text
    assert started.json()["status"] in ("queued", "running", "completed")

    # the live tail: every line once, in seq order, then `end` when the job is over
    events = read_stream(api, job_id)
    assert events[-1].event == "end"
    assert events[-1].json() == {"job_id": job_id, "status": "completed"}
    lines = log_events(events)
    seqs = [line["seq"] for line in lines]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [e.id for e in events if e.event == "log"] == [str(s) for s in seqs]
    names = [line["event"] for line in lines]
    assert names[:3] == ["job.start", "job.acquire", "job.started"]
    # small pages already fetched commit together: every provider page is in exactly one commit
    committed_pages = [
        line["fields"]["pages"] for line in lines if line["event"] == "page.committed"
    ]
    assert sum(committed_pages) == ROWS // 50 and 1 <= len(committed_pages) <= ROWS // 50
    assert names[-1] == "job.finish"

    # the counters: every row fetched, one lead per person, nothing rejected
    job = api.get(f"/jobs/{job_id}").json()
    people = distinct_people(SAMPLE)
    assert job["status"] == "completed" and job["error"] is None
    assert job["counters"] == {
        "pages": ROWS // 50,
        "fetched": ROWS,
        "inserted": people,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }
    committed = [line["fields"] for line in lines if line["event"] == "page.committed"]
    assert sum(page["inserted"] for page in committed) == people
    assert api.get("/leads", params={"count": "true", "page_size": 1}).json()["total"] == people

    # a client that reconnects with Last-Event-ID gets exactly the lines after it
    middle = seqs[len(seqs) // 2]
    resumed = read_stream(api, job_id, **{"Last-Event-ID": str(middle)})
    assert [line["seq"] for line in log_events(resumed)] == seqs[seqs.index(middle) + 1 :]
    assert resumed[-1].event == "end"


def run_script(api_url: str, jq: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DASHIN_API_URL": api_url, "CSV": str(SAMPLE)}
    env.pop("JQ", None)
    if jq is not None:
        env["JQ"] = jq
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("json_reader", ["jq", "python"])
def test_the_documented_curl_walkthrough_runs(
    live_api: LiveApi, e2e_worker: Proc, json_reader: str
) -> None:
    if json_reader == "jq" and shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    result = run_script(live_api.url, None if json_reader == "jq" else "")
    output = result.stdout
    api_log = "".join(live_api.proc.output[-40:])
    assert result.returncode == 0, f"{output}\n{result.stderr}\nAPI:\n{api_log}"
    assert "status: completed" in output
    counters = json.loads(re.findall(r"^counters: (\{.*\})$", output, re.MULTILINE)[-1])
    assert counters["fetched"] == ROWS
    assert counters["inserted"] == distinct_people(SAMPLE)
    # the tail printed the stream itself: numbered log events, then the end event
    ids = [int(i) for i in re.findall(r"^id: (\d+)\r?$", output, re.MULTILINE)]
    assert ids == sorted(ids) and len(ids) >= ROWS // 50
    assert re.search(r"^event: end\r?$", output, re.MULTILINE)


def curl_commands(text: str) -> list[str]:
    """Every curl command (continuation lines joined) in a shell script or markdown text."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [m.strip() for m in re.findall(r"(?:^|\$\(|\s)(curl [^\n]*)", joined, re.MULTILINE)]


def normalise(command: str) -> str:
    command = re.sub(r"\)\s*$", "", command)  # the end of a `$( ... )` around it
    return re.sub(r"\s+", " ", command).strip()


def test_the_docs_show_exactly_the_scripts_curl_commands() -> None:
    script = [normalise(c) for c in curl_commands(SCRIPT.read_text())]
    docs = {normalise(c) for c in curl_commands(DOCS.read_text())}
    assert len(script) == 9
    missing = [c for c in script if c not in docs]
    assert missing == [], "docs/api.md does not show these commands of the script"
