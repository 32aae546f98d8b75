"""Optional error reporting to Sentry, switched on by `SENTRY_DSN`.

Off by default and off when `sentry-sdk` is not installed (the `sentry` extra): Dashin then
logs one warning and carries on, because error reporting must never stop a process from
starting. When on, it reports unhandled errors (never request bodies or personal data: leads are
other people's data), tagged with the process's component; performance tracing only when
`SENTRY_TRACES_SAMPLE_RATE` asks for it (off by default: traces cost quota and overhead).
"""

from __future__ import annotations

from typing import Any

from runtime.logging import get_logger
from runtime.settings import Settings

_log = get_logger(__name__)


def init_sentry(settings: Settings, *, component: str = "dashin", **options: Any) -> bool:
    """Start the Sentry client for this process; True when reporting is on.

    `options` go to `sentry_sdk.init` (tests pass a `transport` that records envelopes).
    """
    if settings.sentry_dsn is None:
        return False
    try:
        import sentry_sdk
    except ImportError:
        _log.warning("sentry.unavailable", hint="pip install 'dashin[sentry]' to use SENTRY_DSN")
        return False
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = f"dashin@{version('dashin')}"
    except PackageNotFoundError:
        release = None
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.env,
        release=release,
        send_default_pii=False,
        max_request_body_size="never",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        **options,
    )
    sentry_sdk.set_tag("component", component)
    return True
