"""Test-only connectors exist only where the deployment turns them on (issue 14, H1).

`synthetic`'s `crash_on_page` SIGKILLs the worker; registered everywhere, any tenant could
kill the shared workers with it, and the reaper would hand the poison job to each new one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors import registry
from connectors.errors import ConfigError
from runtime.settings import reset_settings_cache


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry.available.cache_clear()
    reset_settings_cache()
    yield
    registry.available.cache_clear()
    reset_settings_cache()


@pytest.mark.usefixtures("fresh_registry")
def test_synthetic_is_absent_unless_test_connectors_are_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DASHIN_TEST_CONNECTORS", raising=False)
    reset_settings_cache()
    assert "synthetic" not in registry.available()
    assert {"csv", "apollo", "zoominfo", "linkedin", "generic_api"} <= set(registry.available())
    with pytest.raises(ConfigError, match="unknown connector type 'synthetic'"):
        registry.get_connector("synthetic")


@pytest.mark.usefixtures("fresh_registry")
def test_synthetic_is_there_when_turned_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHIN_TEST_CONNECTORS", "1")
    reset_settings_cache()
    assert "synthetic" in registry.available()
