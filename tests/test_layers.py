"""The layers of ARCHITECTURE.md §2, checked by import-linter with every test run.

The contracts live in pyproject.toml (`[tool.importlinter]`); the few imports they still ignore
are the debt issue 15 names, listed there so a new one fails here instead of growing quietly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
