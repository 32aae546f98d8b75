"""Stopping the embedded Redis is prompt: `dashin up`'s Ctrl-C waited seconds on it (issue 21)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from runtime.embedded import EmbeddedRedis


@pytest.mark.slow
def test_the_embedded_redis_stops_at_once_and_keeps_its_data(tmp_path: Path) -> None:
    # Given an embedded Redis holding a key
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    redis.Redis.from_url(url).set("kept", "1")
    # When it is stopped
    started = time.monotonic()
    server.stop()
    took = time.monotonic() - started
    # Then it is down within a second (redis-py used to retry the SHUTDOWN for ~5 s)
    assert not server.is_running()
    assert took < 1.5, f"stopping took {took:.1f}s"
    # and its snapshot brings the key back on the next start
    again = redis.Redis.from_url(server.start())
    try:
        assert again.get("kept") == b"1"
    finally:
        server.stop()
