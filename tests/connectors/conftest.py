"""Fixtures shared by the connector tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.providers.zoominfo import connector as zoominfo
from runtime.settings import reset_settings_cache


@pytest.fixture
def zoominfo_isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Loopback allowed (the emulators); a ZoomInfo token cache and auth clock of the test's own."""
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.0/8")
    monkeypatch.setattr(zoominfo._Tokens, "cache", {})
    monkeypatch.setattr(zoominfo._Tokens, "next_auth", {})
    reset_settings_cache()
    yield
    reset_settings_cache()
