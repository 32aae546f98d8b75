"""Benchmark: a retention purge of 1M job log lines beside a job committing pages.

A finished job of 200 days ago holds `--lines` log lines (default 1,000,000); a running job
commits "pages" in a loop meanwhile: the runner's statements that could meet the purge (bump
`jobs.log_seq`, insert a log line), on a connection with `lock_timeout = 100ms`, so any lock
wait over 100 ms would fail a commit. `scheduler.purge.purge` then removes the old lines in its
batches. Reported: purge time and rate, batches, page commits during the purge, commit latency
(p50/p99/max: an upper bound on any lock wait), lock timeouts (target: 0), and the writer's
time seen waiting on a lock in `pg_stat_activity` (sampled every 2 ms).

    python bench/purge.py                      # 1M lines, batches of 2,000
    python bench/purge.py --lines 200000 --batch 5000 --json
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

import common
import psycopg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    info = common.machine()
    with common.scratch_database("dashin_bench_purge") as url:
        result = run(url, args.lines, args.batch)
    info["loadavg_end"] = common.loadavg()
    if args.json:
        common.emit_json({"machine": info, **result})
        return
    common.print_machine(info)
    common.print_table(
        f"purge of {args.lines:,} log lines, batches of {args.batch:,}",
        ["metric", "value"],
        [[k, v] for k, v in result.items()],
    )


def run(url: str, lines: int, batch: int) -> dict[str, object]:
    from sqlalchemy import create_engine

    from scheduler.purge import purge

    domain, old_job, running = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO domains (id, domain_name) VALUES (%s, 'bench-purge.example')", (domain,)
        )
        source = conn.execute(
            "INSERT INTO data_sources (domain_id, type, name) VALUES (%s, 'csv', 'b') RETURNING id",
            (domain,),
        ).fetchone()[0]  # type: ignore[index]
        old = "now() - interval '200 days'"
        conn.execute(
            "INSERT INTO jobs (id, domain_id, data_source_id, queue, status, created_at, "
            "started_at, finished_at) "
            f"VALUES (%s, %s, %s, 'csv', 'completed', {old}, {old}, {old})",
            (old_job, domain, source),
        )
        conn.execute(
            "INSERT INTO jobs (id, domain_id, data_source_id, queue, status, started_at) "
            "VALUES (%s, %s, %s, 'csv', 'running', now())",
            (running, domain, source),
        )
        started = time.monotonic()
        conn.execute(
            "INSERT INTO job_logs (job_id, seq, ts, level, event, message) "
            f"SELECT %s, g, {old}, 'info', 'old.line', 'an old log line' "
            "FROM generate_series(1, %s) g",
            (old_job, lines),
        )
        conn.execute("VACUUM ANALYZE job_logs")
        fill_s = time.monotonic() - started

    done = threading.Event()
    latencies: list[float] = []
    timeouts = 0
    writer_pid: list[int] = []
    lock_samples = 0
    samples = 0

    def write_pages() -> None:
        nonlocal timeouts
        with psycopg.connect(url) as conn:
            conn.execute("SET lock_timeout = '100ms'")
            conn.commit()
            writer_pid.append(conn.info.backend_pid)
            while not done.is_set():
                begun = time.perf_counter()
                try:
                    with conn.transaction():
                        seq = conn.execute(
                            "UPDATE jobs SET log_seq = log_seq + 1, heartbeat_at = now() "
                            "WHERE id = %s RETURNING log_seq",
                            (running,),
                        ).fetchone()[0]  # type: ignore[index]
                        conn.execute(
                            "INSERT INTO job_logs (job_id, seq, level, event, message) "
                            "VALUES (%s, %s, 'info', 'page.committed', 'page')",
                            (running, seq),
                        )
                except psycopg.errors.LockNotAvailable:
                    timeouts += 1
                latencies.append((time.perf_counter() - begun) * 1000)

    def sample_waits() -> None:
        nonlocal lock_samples, samples
        with psycopg.connect(url, autocommit=True) as conn:
            while not writer_pid and not done.is_set():
                time.sleep(0.001)
            while not done.is_set():
                row = conn.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", writer_pid
                ).fetchone()
                samples += 1
                if row and row[0] == "Lock":
                    lock_samples += 1
                time.sleep(0.002)

    threads = [threading.Thread(target=write_pages), threading.Thread(target=sample_waits)]
    for t in threads:
        t.start()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    started = time.monotonic()
    report = purge(engine, batch_rows=batch)
    purge_s = time.monotonic() - started
    done.set()
    for t in threads:
        t.join()
    engine.dispose()
    removed = sum(report.rows.values())
    return {
        "lines_filled_s": round(fill_s, 1),
        "lines_removed": removed,
        "purge_s": round(purge_s, 1),
        "rows_per_s": round(removed / purge_s),
        "batches": report.batches,
        "page_commits_during_purge": len(latencies),
        "commit_ms_p50": round(common.percentile(latencies, 50), 2),
        "commit_ms_p99": round(common.percentile(latencies, 99), 2),
        "commit_ms_max": round(max(latencies), 2),
        "lock_timeouts_100ms": timeouts,
        "writer_lock_wait_samples": f"{lock_samples} of {samples}",
    }


if __name__ == "__main__":
    main()
