"""Pytest fixtures that start the provider emulators of `connectors.sandbox` on 127.0.0.1.

Each fixture is function-scoped: a fresh emulator on a free port, stopped after the test.
Constructor options come from indirect parametrisation::

    @pytest.mark.parametrize("apollo_emulator", [{"people": 500, "seed": 7}], indirect=True)
    def test_small(apollo_emulator): ...

Everything else is switched at runtime on the returned object: `emu.faults.error_burst(503, 2)`,
`emu.set_rate_limit(5, 1.0)`, `emu.dataset.size = 1000`, `emu.clock.advance(3600)`; counters
are read from `emu.violations`, `emu.stats`, `emu.faults.injected`, `emu.credits_used`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

from connectors.sandbox.apollo import ApolloEmulator
from connectors.sandbox.generic import GenericEmulator
from connectors.sandbox.linkedin import LinkedInEmulator
from connectors.sandbox.server import Emulator
from connectors.sandbox.zoominfo import ZoomInfoEmulator

E = TypeVar("E", bound=Emulator)


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    param = getattr(request, "param", None)
    return dict(param) if isinstance(param, dict) else {}


def _serve(emu: E) -> Iterator[E]:
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def apollo_emulator(request: pytest.FixtureRequest) -> Iterator[ApolloEmulator]:
    """Apollo on a free port; key `apollo-test-key`, 120,000 people unless parametrised."""
    yield from _serve(ApolloEmulator(**_options(request)))


@pytest.fixture
def zoominfo_emulator(request: pytest.FixtureRequest) -> Iterator[ZoomInfoEmulator]:
    """ZoomInfo on a free port; user `zoominfo-user` / `zoominfo-pass`, JWTs valid an hour."""
    yield from _serve(ZoomInfoEmulator(**_options(request)))


@pytest.fixture
def linkedin_emulator(request: pytest.FixtureRequest) -> Iterator[LinkedInEmulator]:
    """LinkedIn Lead Sync; token `linkedin-test-token`, account 123, 1,000 leads over 300 days."""
    yield from _serve(LinkedInEmulator(**_options(request)))


@pytest.fixture
def generic_emulator(request: pytest.FixtureRequest) -> Iterator[GenericEmulator]:
    """Generic REST API at `/v1/contacts`: bearer `generic-test-token`, page/size paging."""
    yield from _serve(GenericEmulator(**_options(request)))
