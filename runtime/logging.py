"""structlog, configured once per process: JSON lines in production, coloured console in a TTY.

Context bound with `bind_contextvars(job_id=..., data_source_id=..., domain_id=...)` rides on
every line the current thread or task emits (the API binds `request_id` per request). Secrets
never reach a line: the redaction processor masks values of keys that look secret, whatever
logged them.

One stream: the standard library's loggers (uvicorn, Dramatiq, Alembic, SQLAlchemy) are routed
through structlog's `ProcessorFormatter` with the same processors and renderer, so a production
process writes nothing but JSON lines.

Errors are one line each. A traceback is rendered plain (no frame locals, no colours) and cut to
`MAX_TRACEBACK_CHARS`, in every mode but an interactive terminal: structlog's default rich
traceback with locals cost about 600 KB of log and seconds of CPU per error (issue 14, H3), and
frame locals carry request bodies and secrets.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

import structlog

from runtime.settings import Settings

_SECRET_KEYS = ("password", "secret", "token", "api_key", "apikey", "authorization", "credential")
#: a rendered traceback longer than this keeps its head and its tail (the innermost frames)
MAX_TRACEBACK_CHARS = 8_000
#: a longer line of it (an error message quoting a request body) is cut to this many
MAX_LINE_CHARS = 1_000
#: standard library loggers that configure handlers of their own: made to propagate to ours
_FOREIGN_LOGGERS = ("uvicorn", "uvicorn.error", "dramatiq", "alembic")
#: the API writes its own access lines (`api.request_context`): uvicorn's are switched off
#: (a logger without handlers anywhere up its chain makes uvicorn skip the access line)
_SILENCED_LOGGERS = ("uvicorn.access",)
#: HTTP clients whose info/debug lines echo request URLs and headers, query-string API keys
#: included: kept at WARNING even at debug level (issue 14, H2)
_URL_ECHOING_LOGGERS = ("httpx", "httpcore", "urllib3")
_configured = False
_handler: logging.Handler | None = None


@lru_cache(maxsize=4096)
def _looks_secret(key: str) -> bool:
    """Cached per key name: a line has a handful of keys, drawn from a small vocabulary, and
    the uncached test was half the cost of writing a line (measured on the access line)."""
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_KEYS)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if _looks_secret(key) and event_dict[key] is not None:
            event_dict[key] = "********"
    return event_dict


def bounded_traceback(exc: BaseException, limit: int = MAX_TRACEBACK_CHARS) -> str:
    """The plain traceback of `exc` (with its chain), at most about `limit` characters."""
    lines = "".join(traceback.format_exception(exc)).rstrip("\n").split("\n")
    text = "\n".join(
        line if len(line) <= MAX_LINE_CHARS else f"{line[:MAX_LINE_CHARS]}... ({len(line)} chars)"
        for line in lines
    )
    if len(text) <= limit:
        return text
    head = limit // 4
    cut = len(text) - limit
    return f"{text[:head]}\n... {cut} characters cut ...\n{text[-(limit - head) :]}"


def _as_exception(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        value = exc_info[1]
        return value if isinstance(value, BaseException) else None
    if exc_info is True:
        return sys.exc_info()[1]
    return None


def _bounded_exception(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """`exc_info` → `exception`: one plain, size-bounded string (replaces `format_exc_info`)."""
    exc = _as_exception(event_dict.pop("exc_info", None))
    if exc is not None:
        event_dict["exception"] = bounded_traceback(exc)
    return event_dict


def use_json(settings: Settings) -> bool:
    return settings.log_format == "json" or (
        settings.log_format == "auto" and (settings.env == "production" or not sys.stderr.isatty())
    )


def configure_logging(settings: Settings, *, force: bool = False) -> None:
    """Configure structlog and the standard library's loggers (idempotent unless `force`)."""
    global _configured
    if _configured and not force:
        return
    level = getattr(logging, settings.log_level.upper())
    interactive = not use_json(settings) and sys.stderr.isatty()
    renderer: Any
    if use_json(settings):
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=interactive,
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
            if interactive
            else structlog.dev.plain_traceback,
        )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    if not interactive:
        shared.append(_bounded_exception)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _route_stdlib(shared, renderer, level)
    _configured = True


def _route_stdlib(shared: list[Any], renderer: Any, level: int) -> None:
    """One handler on the root logger renders stdlib records like structlog's own lines."""
    global _handler
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = handler
    root.addHandler(handler)
    # Libraries stay quiet below WARNING unless asked for debug; server and migration steps
    # (uvicorn's startup lines, Alembic's "Running upgrade") are worth an info line.
    root.setLevel(max(level, logging.WARNING) if level > logging.DEBUG else level)
    for name in _FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        foreign.handlers.clear()
        foreign.propagate = True
    logging.getLogger("alembic").setLevel(max(level, logging.INFO))
    for name in _URL_ECHOING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in _SILENCED_LOGGERS:
        silenced = logging.getLogger(name)
        silenced.handlers.clear()
        silenced.propagate = False
    logging.captureWarnings(True)  # `warnings.warn` output joins the stream as lines too


def current_request_id() -> str | None:
    """The id of the API request this thread or task is serving (None outside a request)."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value is not None else None


def get_logger(name: str | None = None, **context: Any) -> Any:
    logger = structlog.get_logger(name)
    return logger.bind(**context) if context else logger
