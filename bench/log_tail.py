"""Benchmark: log tail latency, from a log line's commit to its arrival on the SSE stream.

The control API runs under uvicorn (one process) on a loopback port. A job is moved to
`running` and `--tails` clients (threads in this process, one HTTP connection each) follow
`GET /api/v1/jobs/{id}/logs/stream`. A writer then commits one log line every `--interval`
seconds through `models.job_states.append_log` (the runner's path: seq reservation, insert, `NOTIFY
job_logs`); each line's message carries the wall time taken just before its COMMIT, so the
latency measured includes the commit itself (an upper bound). Every tail reports the arrival
time of every line; the latency distribution over all (line, tail) pairs is reported.
Target: p95 <= 200 ms with 10 tails.

`dashin logs -f` follows the same SSE endpoint (`cli/logs.py`), so its latency is this one plus
the terminal's printing; it is not measured separately here.

    python bench/log_tail.py                        # 10 tails, 300 lines at 20 lines/s
    python bench/log_tail.py --tails 50 --lines 600 --json
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from typing import Any

import common
import httpx

TARGET_P95_MS = 200.0


class Tail(threading.Thread):
    """Follows one job's SSE log stream; records (seq, latency ms) of every `bench.tick` line."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.token = token
        self.latencies: list[float] = []
        self.connected = threading.Event()
        self.error: str | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=120)) as client,
                client.stream("GET", self.url, headers=headers) as response,
            ):
                response.raise_for_status()
                self.connected.set()
                event = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "log":
                        arrived = time.time()
                        data = json.loads(line[5:])
                        if data.get("event") == "bench.tick":
                            sent = float(data["message"])
                            self.latencies.append((arrived - sent) * 1000)
                    elif line.startswith("data:") and event == "end":
                        break
        except Exception as exc:  # reported by the main thread
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.connected.set()
            self.ended.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tails", type=int, default=10)
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between commits")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from sqlalchemy.orm import Session

    from models import job_states
    from models.job_logs import LogLine
    from runtime.db import make_engine
    from tests.factories import make_job, make_source

    info = common.machine()
    common.flush_redis()
    result: dict[str, Any] = {"tails": args.tails, "lines": args.lines}
    with common.scratch_database("dashin_bench_tail") as db_url:
        common.use_services(db_url)
        api, base = common.start_api(db_url)
        engine = make_engine(db_url, pool_size=2)
        try:
            token, domain, user = common.signup(base)
            source = make_source(engine, domain, "synthetic", {"total": 10})
            job_id: uuid.UUID = make_job(engine, domain, source, {}, user)
            with Session(engine) as session, session.begin():
                job_states.start(session, job_id)
            with Session(engine) as session, session.begin():
                moved = job_states.acquire(session, job_id, 5)
                assert moved is not None
                lease = moved.lease
            url = f"{base}/api/v1/jobs/{job_id}/logs/stream"
            tails = [Tail(url, token) for _ in range(args.tails)]
            for tail in tails:
                tail.start()
            for tail in tails:
                tail.connected.wait(30)
            time.sleep(1.0)  # every stream has LISTENed and read the backlog
            next_at = time.monotonic()
            for n in range(args.lines):
                with Session(engine) as session, session.begin():
                    stamp = f"{time.time():.6f}"
                    job_states.append_log(
                        session,
                        job_id,
                        [LogLine("info", "bench.tick", stamp, {"n": n})],
                        lease=lease,
                    )
                next_at += args.interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            time.sleep(1.0)
            with Session(engine) as session, session.begin():
                job_states.finish(session, job_id, lease)  # the streams end
            for tail in tails:
                tail.ended.wait(30)
        finally:
            common.stop_process(api)
            engine.dispose()
            common.flush_redis()
    errors = [t.error for t in tails if t.error]
    latencies = [v for t in tails for v in t.latencies]
    expected = args.lines * args.tails
    result.update(
        {
            "received": len(latencies),
            "expected": expected,
            "tail_errors": errors,
            "p50_ms": round(common.percentile(latencies, 50), 1),
            "p95_ms": round(common.percentile(latencies, 95), 1),
            "p99_ms": round(common.percentile(latencies, 99), 1),
            "max_ms": round(max(latencies), 1) if latencies else None,
        }
    )
    result["target_met"] = len(latencies) == expected and result["p95_ms"] <= TARGET_P95_MS
    info["loadavg_end"] = common.loadavg()
    result["machine"] = info
    if args.json:
        common.emit_json(result)
        return
    common.print_machine(info)
    common.print_table(
        f"Log tail: commit -> SSE arrival, {args.tails} tails, {args.lines} lines "
        f"every {args.interval * 1000:.0f} ms",
        ["received", "p50 ms", "p95 ms", "p99 ms", "max ms", "target p95 <= 200"],
        [
            [
                f"{len(latencies)}/{expected}",
                result["p50_ms"],
                result["p95_ms"],
                result["p99_ms"],
                result["max_ms"],
                result["target_met"],
            ]
        ],
    )
    if errors:
        print("tail errors:", errors)


if __name__ == "__main__":
    main()
