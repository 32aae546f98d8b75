"""The console's templates and static files ship in the wheel (package-data covers them all),
and the vendored libraries carry their licences."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "api" / "console"


def test_package_data_covers_every_template_and_static_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["api.console"]
    files = [
        p.relative_to(CONSOLE).as_posix()
        for folder in ("templates", "static")
        for p in (CONSOLE / folder).rglob("*")
        if p.is_file()
    ]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert missing == []


def test_each_vendored_library_has_its_licence_next_to_it() -> None:
    vendor = CONSOLE / "static" / "vendor"
    assert "Zero-Clause BSD" in (vendor / "htmx.LICENSE").read_text()
    assert "MIT License" in (vendor / "uPlot.LICENSE").read_text()
    readme = (vendor / "README.md").read_text()
    assert "2.0.11" in readme and "1.6.32" in readme
    # No CDN: templates load scripts and styles from the package only
    for template in (CONSOLE / "templates").glob("*.html"):
        text = template.read_text()
        assert "https://" not in text and "http://" not in text, template.name
