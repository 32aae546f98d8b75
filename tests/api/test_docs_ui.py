"""`/docs` and `/redoc` work offline: every asset they load is served by the API itself."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.docs_ui import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_local_assets(api_client: TestClient, page: str) -> None:
    response = api_client.get(page)
    assert response.status_code == 200
    html = response.text
    # Given the page's scripts, stylesheets and icons
    urls = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', html)
    urls += re.findall(r"url:\s*'([^']+)'", html)  # Swagger UI's spec URL
    assert urls, html
    # Then none is on another host, and each one answers
    assert [u for u in urls if re.match(r"(https?:)?//", u)] == []
    assert "fonts.googleapis" not in html
    for url in urls:
        assert api_client.get(url).status_code == 200, url


def test_the_assets_have_their_content_types(api_client: TestClient) -> None:
    js = api_client.get("/docs-static/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert (
        api_client.get("/docs-static/swagger-ui.css").headers["content-type"].startswith("text/css")
    )
    assert len(api_client.get("/docs-static/redoc.standalone.js").content) > 500_000


def test_the_wheel_ships_every_asset_and_licence() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    patterns = package_data["api"]
    files = sorted(p.name for p in STATIC_DIR.iterdir())
    assert {"LICENSE.swagger-ui-dist", "LICENSE.redoc", "VENDORED.md"} <= set(files)
    unshipped = [
        f for f in files if not any(fnmatch(f"docs_static/{f}", pattern) for pattern in patterns)
    ]
    assert unshipped == []
