"""`runtime.sentry`: nothing without SENTRY_DSN; with it, unhandled errors reach Sentry, no PII."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from runtime.errors import ConfigurationError
from runtime.sentry import init_sentry
from runtime.settings import load_settings


class Recording(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Any] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.envelopes.append(envelope)


@pytest.fixture(autouse=True)
def _no_client_left_behind() -> Iterator[None]:
    yield
    sentry_sdk.init(dsn=None)


def test_without_a_dsn_nothing_is_initialised() -> None:
    settings = load_settings(sentry_dsn=None)
    assert init_sentry(settings) is False
    assert not sentry_sdk.get_client().is_active()


def test_with_a_dsn_errors_are_reported_with_the_component_tag() -> None:
    transport = Recording()
    settings = load_settings(sentry_dsn="https://public@sentry.example/1")
    assert init_sentry(settings, component="worker", transport=transport) is True
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        sentry_sdk.capture_exception(exc)
    sentry_sdk.flush()
    events = [item.payload.json for env in transport.envelopes for item in env.items]
    errors = [e for e in events if e and e.get("exception")]
    assert errors and errors[0]["exception"]["values"][0]["value"] == "boom"
    assert errors[0]["tags"]["component"] == "worker"
    assert sentry_sdk.get_client().options["send_default_pii"] is False


def test_tracing_is_off_unless_a_sample_rate_is_set() -> None:
    dsn = "https://public@sentry.example/1"
    assert init_sentry(load_settings(sentry_dsn=dsn), transport=Recording()) is True
    assert sentry_sdk.get_client().options["traces_sample_rate"] == 0.0
    settings = load_settings(sentry_dsn=dsn, sentry_traces_sample_rate=0.25)
    assert init_sentry(settings, transport=Recording()) is True
    assert sentry_sdk.get_client().options["traces_sample_rate"] == 0.25


def test_a_sample_rate_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="sentry_traces_sample_rate"):
        load_settings(sentry_traces_sample_rate=1.5)
