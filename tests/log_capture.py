"""The process's JSON log lines in a buffer, for tests that read what a process would write."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from runtime.logging import configure_logging
from runtime.settings import load_settings


@contextmanager
def json_log(level: str = "info") -> Iterator[io.StringIO]:
    """JSON logging at `level` into a buffer; the configuration is restored on exit.

    Its own monkeypatch context, so that restoring it undoes nothing another fixture set."""
    buffer = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stderr", buffer)
        patch.setenv("DASHIN_LOG_FORMAT", "json")
        patch.setenv("DASHIN_LOG_LEVEL", level)
        configure_logging(load_settings(), force=True)
        try:
            yield buffer
        finally:
            patch.undo()
            configure_logging(load_settings(), force=True)
