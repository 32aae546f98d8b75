"""The layers of ARCHITECTURE.md §2, checked by import-linter with every test run.

The contracts live in pyproject.toml (`[tool.importlinter]`) and are drawn in
docs/architecture.md. No import is ignored: an exception would have to be named and justified
there, and this test reads the two side by side so neither can grow quietly.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_ignored_import_is_named_in_the_architecture_note() -> None:
    documented = (ROOT / "docs" / "architecture.md").read_text()
    ignored = [i for c in _contracts() for i in c.get("ignore_imports", [])]
    assert [i for i in ignored if f"`{i}`" not in documented] == []


def test_the_api_and_scheduler_may_import_no_workers_module_but_enqueue() -> None:
    """The forbidden list names every workers module; a new one must be added (or be enqueue)."""
    (contract,) = [c for c in _contracts() if "workers.enqueue only" in c["name"]]
    modules = {f"workers.{p.stem}" for p in (ROOT / "workers").glob("*.py")} - {
        "workers.__init__",
        "workers.enqueue",
    }
    modules |= {
        f"workers.{p.name}" for p in (ROOT / "workers").iterdir() if (p / "__init__.py").exists()
    }
    assert set(contract["forbidden_modules"]) == modules
