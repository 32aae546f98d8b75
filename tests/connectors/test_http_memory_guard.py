"""The HTTP layer's memory guard (issue 14, item 1): a provider answer larger than
`max_bytes` fails with `ResponseTooLarge` before it fills the worker's memory.

The probe's point: a tenant's `generic_api` source can name any URL, and whatever answers
decides how much a worker thread reads. Declared sizes are refused unread; undeclared (chunked)
and compressed bodies are counted as they are decoded and cut at the cap.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest

from connectors.errors import ResponseTooLarge
from connectors.kit import http

CAP = 64 * 1024


def _client(handler: httpx.MockTransport) -> httpx.Client:
    return http.make_client("https://provider.example", transport=handler)


def test_an_answer_within_the_cap_reads_as_before() -> None:
    body = b'{"items": [' + b",".join(b'{"n": %d}' % i for i in range(1000)) + b"]}"
    assert len(body) < CAP
    client = _client(httpx.MockTransport(lambda _req: httpx.Response(200, content=body)))
    response = http.request(client, "GET", "/people", max_bytes=CAP)
    assert response.status_code == 200
    assert response.content == body
    assert len(response.json()["items"]) == 1000


def test_a_declared_size_past_the_cap_is_refused_unread() -> None:
    produced: list[int] = []

    def body() -> Iterator[bytes]:
        for _ in range(100):
            produced.append(1)
            yield b"x" * 4096

    def handler(_req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(100 * 4096)}, content=body())

    client = _client(httpx.MockTransport(handler))
    with pytest.raises(ResponseTooLarge) as exc:
        http.request(client, "GET", "/people?api_key=sk-canary-123", max_bytes=CAP)
    assert produced == []  # not one chunk was read
    assert exc.value.code == "response_too_large" and exc.value.permanent
    message = str(exc.value)
    assert "it declares 409600 bytes" in message and "65536 bytes" in message
    assert "DASHIN_MAX_RESPONSE_BYTES" in message
    assert "sk-canary-123" not in message  # the URL is shown redacted


def test_an_undeclared_stream_is_cut_at_the_cap() -> None:
    produced: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            produced.append(1)
            yield b"y" * 4096

    client = _client(httpx.MockTransport(lambda _req: httpx.Response(200, content=endless())))
    with pytest.raises(ResponseTooLarge):
        http.request(client, "GET", "/people", max_bytes=CAP)
    # Reading stopped at the first chunk past the cap
    assert len(produced) == CAP // 4096 + 1


def test_a_compressed_answer_is_measured_decoded() -> None:
    # A gzip bomb: 4 MiB of zeros compress to a few KiB, well under the cap on the wire
    bomb = gzip.compress(b"\0" * (4 << 20))
    assert len(bomb) < CAP

    def handler(_req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=bomb)

    client = _client(httpx.MockTransport(handler))
    with pytest.raises(ResponseTooLarge):
        http.request(client, "GET", "/people", max_bytes=CAP)


def test_a_small_compressed_answer_is_decoded_once() -> None:
    body = b'{"name": "Ada"}'

    def handler(_req: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"Content-Encoding": "gzip", "Link": '<https://p.example/2>; rel="next"'},
            content=gzip.compress(body),
        )

    response = http.request(_client(httpx.MockTransport(handler)), "GET", "/p", max_bytes=CAP)
    assert response.json() == {"name": "Ada"}
    assert response.links["next"]["url"] == "https://p.example/2"


def test_the_cap_defaults_to_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.settings import reset_settings_cache

    monkeypatch.setenv("DASHIN_MAX_RESPONSE_BYTES", "2048")
    reset_settings_cache()
    try:
        big = httpx.MockTransport(lambda _req: httpx.Response(200, content=b"z" * 4096))
        with pytest.raises(ResponseTooLarge, match="2048 bytes"):
            http.request(_client(big), "GET", "/people")
    finally:
        monkeypatch.delenv("DASHIN_MAX_RESPONSE_BYTES")
        reset_settings_cache()
