"""Shared helpers for the benchmarks: scratch databases, machine facts, tables, percentiles.

Not a benchmark itself. Every script in `bench/` creates its own migrated scratch database on
the PostgreSQL at `BENCH_PG_URL` (default `postgresql://postgres@127.0.0.1:5432/test`) and drops
it when it ends, also on Ctrl-C. Redis is a private `redis-server` on a free port started by
`ensure_redis()` (no persistence, stopped at exit), so that test suites flushing the shared
server's databases cannot eat the benchmark's queues; set `BENCH_REDIS_URL` to use another.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# benchmarks drive the test-only `synthetic` connector; worker processes inherit this
os.environ.setdefault("DASHIN_TEST_CONNECTORS", "1")

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"


def with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@contextmanager
def scratch_database(prefix: str = "dashin_bench") -> Iterator[str]:
    """A fresh database migrated to head; dropped (WITH FORCE) on exit."""
    import migrations

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(PG_URL, name)
    try:
        migrations.upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def ensure_redis() -> str:
    """Start a private redis-server (unless `BENCH_REDIS_URL` is set); children inherit it."""
    global REDIS_URL
    if REDIS_URL:
        return REDIS_URL
    import atexit
    import shutil

    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found: install it or set BENCH_REDIS_URL")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    atexit.register(stop_process, proc, 10.0)
    REDIS_URL = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(REDIS_URL).ping())
        except redis.RedisError:
            return False

    if not wait_until(answers, 10, 0.05):
        raise RuntimeError("private redis-server did not start")
    os.environ["BENCH_REDIS_URL"] = REDIS_URL
    return REDIS_URL


def service_env(db_url: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a product process (worker, API) pointed at the bench services."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url or ensure_redis(),
            "DASHIN_SECRET_KEY": SECRET_KEY,
            "DASHIN_LOG_LEVEL": "warning",
            "DASHIN_LOG_FORMAT": "json",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def use_services(db_url: str, redis_url: str | None = None, **extra: str) -> None:
    """Point this process's `runtime.settings` at the bench services."""
    from runtime.settings import reset_settings_cache

    os.environ.update(service_env(db_url, redis_url, **extra))
    reset_settings_cache()


def machine() -> dict[str, Any]:
    """Where and when the figures were taken (recorded next to them)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    pg_version = "?"
    try:
        with psycopg.connect(PG_URL) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pg_version = str(row[0]) if row else "?"
    except psycopg.Error:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + ("+dirty" if dirty else ""),
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": pg_version,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def vm_rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(
            "  ".join(
                (v.ljust(w) if i == 0 else v.rjust(w))
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def print_machine(info: dict[str, Any]) -> None:
    print(
        f"{info['date']}  commit {info['commit']}  {info['cpu']} x{info['cores']}  "
        f"Python {info['python']}  PostgreSQL {info['postgres']}  "
        f"load {info['loadavg_start']} -> {info.get('loadavg_end', '?')}"
    )


def emit_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, default=str))


def start_workers(db_url: str, queue: str, processes: int, threads: int = 1, **env: str) -> Any:
    """`python -m workers --queues <queue> --processes N --threads M` in its own session."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workers",
            "--queues",
            queue,
            "--processes",
            str(processes),
            "--threads",
            str(threads),
        ],
        env=service_env(db_url, **env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_process(proc: Any, timeout: float = 30.0) -> None:
    """SIGTERM a process group we started; SIGKILL it if it does not stop in time."""
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def flush_redis(url: str | None = None) -> None:
    import redis

    client = redis.Redis.from_url(url or ensure_redis())
    client.flushdb()
    client.close()


def start_api(db_url: str, **env: str) -> tuple[Any, str]:
    """The control API under uvicorn (one process) on a free loopback port; waits for /healthz."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=service_env(db_url, DASHIN_ALLOW_ANY_DOMAIN_NAME="true", **env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError("the API process exited")
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_until(up, 60, 0.2):
        stop_process(proc)
        raise RuntimeError("the API did not come up in 60 s")
    return proc, base


def signup(base: str) -> tuple[str, uuid.UUID, uuid.UUID]:
    """A new user founding a new domain: (bearer token, domain id, user id)."""
    import httpx

    tag = uuid.uuid4().hex[:10]
    response = httpx.post(
        base + "/api/v1/auth/signup",
        json={
            "email": f"bench-{tag}@bench-{tag}.example",
            "password": "bench-password-123456",
            "domain_name": f"bench-{tag}.example",
        },
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    return body["access_token"], uuid.UUID(body["domain_id"]), uuid.UUID(body["user"]["id"])
