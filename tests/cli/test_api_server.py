"""`dashin api --workers N`: the default process count and the metrics directory they share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import api_server
from cli.main import app


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(api_server, "serve", lambda *args: calls.append(args))
    monkeypatch.setattr("cli.main._settings", lambda: None)
    monkeypatch.delenv("DASHIN_API_WORKERS", raising=False)
    return calls


def test_workers_default_to_the_cores_at_most_four(
    served: list[tuple[str, int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for cores, expected in ((1, 1), (2, 2), (16, 4)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert CliRunner().invoke(app, ["api"]).exit_code == 0
        assert served[-1] == ("127.0.0.1", 8000, expected)


def test_workers_come_from_the_option_or_the_environment(
    served: list[tuple[str, int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CliRunner().invoke(app, ["api", "--workers", "3", "--port", "9000"]).exit_code == 0
    assert served[-1] == ("127.0.0.1", 9000, 3)
    monkeypatch.setenv("DASHIN_API_WORKERS", "5")
    assert CliRunner().invoke(app, ["api"]).exit_code == 0
    assert served[-1][2] == 5
    assert CliRunner().invoke(app, ["api", "--workers", "0"]).exit_code != 0


def test_several_processes_get_a_fresh_metrics_directory_removed_at_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(api_server.METRICS_DIR_ENV, raising=False)
    with api_server.shared_metrics_dir(1) as single:
        assert single is None and api_server.METRICS_DIR_ENV not in os.environ
    with api_server.shared_metrics_dir(2) as shared:
        assert shared is not None and os.environ[api_server.METRICS_DIR_ENV] == shared
        assert Path(shared).is_dir() and not any(Path(shared).iterdir())
    assert not Path(shared).exists() and api_server.METRICS_DIR_ENV not in os.environ


def test_an_operators_metrics_directory_is_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(api_server.METRICS_DIR_ENV, str(tmp_path))
    with api_server.shared_metrics_dir(4) as shared:
        assert shared == str(tmp_path)
    assert tmp_path.is_dir() and os.environ[api_server.METRICS_DIR_ENV] == str(tmp_path)
