"""structlog, configured once per process: JSON lines in production, coloured console in a TTY.

Context bound with `bind_contextvars(job_id=..., data_source_id=..., domain_id=...)` rides on
every line the current thread or task emits. Secrets never reach a line: the redaction processor
masks values of keys that look secret, whatever logged them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from runtime.settings import Settings

_SECRET_KEYS = ("password", "secret", "token", "api_key", "apikey", "authorization", "credential")
_configured = False


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if any(marker in key.lower() for marker in _SECRET_KEYS) and event_dict[key] is not None:
            event_dict[key] = "********"
    return event_dict


def configure_logging(settings: Settings, *, force: bool = False) -> None:
    global _configured
    if _configured and not force:
        return
    level = getattr(logging, settings.log_level.upper())
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and (settings.env == "production" or not sys.stderr.isatty())
    )
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, format="%(message)s")
    _configured = True


def get_logger(name: str | None = None, **context: Any) -> Any:
    logger = structlog.get_logger(name)
    return logger.bind(**context) if context else logger
