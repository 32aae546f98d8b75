"""`Dockerfile` and `compose.yaml`, the second way to run Dashin.

What can be checked without a Docker engine is checked always: the compose file's services,
their start order, that every command they run is a real `dashin` command with real options,
and the URLs pointing at the compose services. With the compose plugin, `docker compose config`
validates the file; with an engine, the image is built and its `dashin` runs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DASHIN_SERVICES = ("migrate", "api", "worker", "scheduler")


def test_the_stack_has_its_six_services() -> None:
    assert set(SERVICES) == {"postgres", "redis", "migrate", "api", "worker", "scheduler"}
    assert {"pgdata", "redisdata"} <= set(COMPOSE["volumes"])


@pytest.mark.parametrize("name", ["api", "worker", "scheduler"])
def test_the_processes_start_after_one_successful_migration(name: str) -> None:
    depends = SERVICES[name]["depends_on"]
    assert depends["migrate"] == {"condition": "service_completed_successfully"}
    assert depends["postgres"] == {"condition": "service_healthy"}
    assert depends["redis"] == {"condition": "service_healthy"}


def test_migrate_runs_once_after_the_databases_are_healthy() -> None:
    migrate = SERVICES["migrate"]
    assert migrate["restart"] == "no"
    assert set(migrate["depends_on"]) == {"postgres", "redis"}
    assert "healthcheck" in SERVICES["postgres"] and "healthcheck" in SERVICES["redis"]


@pytest.mark.parametrize("name", DASHIN_SERVICES)
def test_each_service_runs_a_real_dashin_command(name: str) -> None:
    program, *args = SERVICES[name]["command"]
    assert program == "dashin"
    group = typer.main.get_command(app)
    command = group.commands[args[0]]  # type: ignore[attr-defined]
    command.make_context(args[0], list(args[1:]))  # raises on an unknown option


@pytest.mark.parametrize("name", DASHIN_SERVICES)
def test_each_service_reaches_the_compose_databases(name: str) -> None:
    env = SERVICES[name]["environment"]
    assert urlsplit(env["DATABASE_URL"]).hostname == "postgres"
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    assert env["DASHIN_SECRET_KEY"].startswith("${DASHIN_SECRET_KEY:?")  # never a default


def test_the_image_installs_the_package_and_serves_the_api() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    assert 'CMD ["dashin", "api", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    assert "USER dashin" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".dashin"} <= set(ignored)


def _docker_works(*args: str) -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", *args], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def test_docker_compose_accepts_the_file() -> None:
    if not _docker_works("compose", "version"):
        pytest.skip("the docker compose plugin is not installed here")
    env_file = {"DASHIN_SECRET_KEY": "x" * 40}
    result = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env_file, "PATH": "/usr/local/bin:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_the_image_builds_and_runs_dashin() -> None:
    if not _docker_works("info"):
        pytest.skip("no Docker engine on this machine")
    tag = "dashin:test"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    result = subprocess.run(
        ["docker", "run", "--rm", tag, "dashin", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("dashin "), result.stderr
