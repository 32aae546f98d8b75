"""docs/first-source.md, walked through: its `bash` blocks, in order, as one script, against a real
API and worker, the Apollo emulator for the user's Apollo account and a local webhook receiver.

The page's prerequisites (`DASHIN_API_KEY`, `APOLLO_KEY`, `APOLLO_BASE_URL`, `WEBHOOK_URL`,
`dashin` on the PATH) come from the environment, as the page asks the reader to export them.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
from standardwebhooks import Webhook

from connectors.sandbox.apollo import ApolloEmulator
from tests.cli.conftest import CliUser, LiveApi, Proc, cli_user

__all__ = ["cli_user"]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "first-source.md"
Delivery = tuple[dict[str, str], bytes]


@pytest.fixture
def all_queues_worker(live_env: dict[str, str]) -> Iterator[Proc]:
    proc = Proc([sys.executable, "-m", "workers", "--threads", "2"], live_env)
    try:
        proc.wait_for("worker.ready")
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[Delivery]]]:
    """A webhook endpoint on 127.0.0.1 that answers 204 and hands each request to the test."""
    received: queue.Queue[Delivery] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.put(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dashin", received
    finally:
        server.shutdown()
        server.server_close()


def guide_script() -> str:
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert len(blocks) == 6
    return "set -euo pipefail\n" + "\n".join(blocks)


@pytest.mark.slow
@pytest.mark.parametrize("apollo_emulator", [{"people": 600, "seed": 7}], indirect=True)
def test_the_first_source_guide_runs_against_the_sandbox(
    live_api: LiveApi,
    all_queues_worker: Proc,
    cli_user: CliUser,
    apollo_emulator: ApolloEmulator,
    receiver: tuple[str, queue.Queue[Delivery]],
    tmp_path: Path,
) -> None:
    hook_url, deliveries = receiver
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DASHIN_HOME": str(tmp_path / ".dashin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "DASHIN_API_URL": live_api.url,
        "DASHIN_API_KEY": cli_user.key,
        "APOLLO_KEY": "apollo-test-key",
        "APOLLO_BASE_URL": f"{apollo_emulator.url}/api/v1",
        "WEBHOOK_URL": hook_url,
    }
    result = subprocess.run(
        ["bash", "-c", guide_script()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    # step 2 reached the sandbox with the stored key, step 3's job completed, step 4 scheduled
    assert re.search(r"^ok: \d+ people match", out, re.MULTILINE), out
    assert "job " in result.stderr and "completed" in result.stderr
    assert '"cron": "0 7 * * 1-5"' in out and '"next_run_at": "20' in out
    # step 5: the secret was printed, and the ping arrives signed with it
    secret = re.findall(r"^(whsec_\S+)$", out, re.MULTILINE)
    assert len(secret) == 1, out
    headers, body = deliveries.get(timeout=60)
    event = Webhook(secret[0]).verify(body, headers)
    assert event["type"] == "ping"
