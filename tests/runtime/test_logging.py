"""`runtime.logging`: one JSON stream (structlog's lines and the standard library's), secrets
masked, exceptions as one bounded plain string."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from runtime.logging import MAX_TRACEBACK_CHARS
from tests.log_capture import json_log


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """JSON logging into a buffer; the process's configuration is restored afterwards."""
    with json_log("info") as buffer:
        yield buffer


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_structlog_and_stdlib_lines_are_one_json_stream_with_secrets_masked(
    stream: io.StringIO,
) -> None:
    with structlog.contextvars.bound_contextvars(request_id="r-1"):
        structlog.get_logger("t").info("thing.done", api_key="k-123", Password="p", count=3)
        logging.getLogger("uvicorn.error").warning("plain %s line", "stdlib")
    structlog.get_logger("t").info("no.context")

    first, second, third = _lines(stream)
    assert first["event"] == "thing.done" and first["count"] == 3
    assert first["api_key"] == "********" and first["Password"] == "********"
    assert first["request_id"] == "r-1" and second["request_id"] == "r-1"
    assert second["event"] == "plain stdlib line" and second["logger"] == "uvicorn.error"
    assert second["level"] == "warning"
    assert "request_id" not in third
    assert "k-123" not in stream.getvalue()


def test_an_exception_is_one_bounded_plain_string(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad " + "q" * 100_000)
    except ValueError:
        structlog.get_logger("t").error("it.failed", exc_info=True)
        logging.getLogger("dramatiq.worker").exception("stdlib failure")

    mine, theirs = _lines(stream)
    for entry in (mine, theirs):
        assert entry["exception"].startswith("Traceback (most recent call last):")
        assert "ValueError: bad qqq" in entry["exception"]
        assert len(entry["exception"]) <= MAX_TRACEBACK_CHARS + 100
        assert "exc_info" not in entry


def test_alembic_lines_join_the_json_stream(stream: io.StringIO, db_url: str) -> None:
    """`dashin migrate` and the API's start-up migrate in-process: Alembic's own lines must be
    JSON too (its `fileConfig` would install a plain-text handler)."""
    import migrations

    migrations.upgrade(db_url)  # already at head: Alembic still says what it assumes

    lines = _lines(stream)  # fails on any plain-text line
    alembic = [line for line in lines if line.get("logger", "").startswith("alembic")]
    assert alembic, stream.getvalue()
    assert all(line["level"] == "info" and "timestamp" in line for line in alembic)
