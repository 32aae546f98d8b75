"""One gate for what a request carries before any route, validator or the database sees it.

A black-box probe (issue 14, M4) got 130 server errors from 12 causes, most of them values that
Python accepts and PostgreSQL does not: NUL bytes in text (`GET /leads?q=%00`, `/r/%00`), NaN,
Infinity and lone surrogates in free-form JSON (`params`, `config`), JSON nested 500 deep,
integers past `bigint`. Each cause was one more place a route forgot to check. This middleware
checks every request once, at the edge, and answers a 422 problem naming the field:

- the path and every query parameter: valid UTF-8, no NUL, integers within `bigint`;
- JSON bodies (at most `MAX_JSON_BYTES`, else 413): finite numbers only, strings without NUL or
  lone surrogates, nesting at most `MAX_DEPTH` deep. Integers of any size are fine in `jsonb`
  (free-form `custom_fields` keep them exactly); typed integer fields carry their column's bounds
  in their schemas (`interval_seconds` within int4).

Per-field limits (lengths, integer bounds) stay with the schemas.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi import FastAPI

from api.http_middleware import HttpMiddleware
from api.problems import dashin_error_response, problem_response
from runtime.errors import FieldError, ValidationFailed

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
BIGINT = 2**63 - 1
_INTEGER = re.compile(r"^[+-]?\d+$")


class _Refused(Exception):
    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.error = FieldError(field, code, message)


def check_text(value: str, field: str) -> None:
    """Text PostgreSQL can store: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise _Refused(field, "nul_character", "text must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refused(field, "invalid_unicode", "text must be valid Unicode") from None


def check_json_value(document: Any, field: str = "") -> None:
    """Raise `_Refused` for the first value PostgreSQL's `jsonb` or our columns cannot hold."""
    stack: list[tuple[Any, str, int]] = [(document, field, 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            top = path.split(".", 1)[0] if path and not path[:1].isdigit() else "body"
            raise _Refused(top, "too_deep", f"JSON nests deeper than {MAX_DEPTH}")
        if isinstance(value, str):
            check_text(value, path or "body")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _Refused(path or "body", "non_finite_number", "numbers must be finite")
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                check_text(key, child)
                stack.append((item, child, depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{path}.{i}" if path else str(i), depth + 1) for i, item in enumerate(value)
            )


def _no_constants(name: str) -> None:
    raise _Refused("body", "non_finite_number", f"{name} is not a JSON number")


def _check_target(scope: Scope) -> None:
    raw_path = scope.get("raw_path") or scope["path"].encode()
    path = unquote_to_bytes(raw_path)
    if b"\x00" in path:
        raise _Refused("path", "nul_character", "the path must not contain a NUL character")
    try:
        path.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused("path", "invalid_unicode", "the path must be valid UTF-8") from None
    query = scope.get("query_string", b"").decode("latin-1")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise _Refused("query", "invalid_unicode", "the query must be valid UTF-8") from None
    for name, value in pairs:
        check_text(name, name or "query")
        check_text(value, name)
        if _INTEGER.match(value) and abs(int(value)) > BIGINT:
            raise _Refused(name, "integer_out_of_range", "integer out of range")


def _is_json(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


class InputGuard(HttpMiddleware):
    """Pure ASGI middleware: streams (SSE) and uploads pass through untouched but for the URL."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            _check_target(scope)
            if scope["method"] in ("POST", "PUT", "PATCH") and _is_json(scope):
                body = await _read_body(receive)
                if body is None:
                    response = problem_response(
                        413,
                        "Payload too large",
                        f"JSON bodies are limited to {MAX_JSON_BYTES} bytes",
                        code="payload_too_large",
                    )
                    await response(scope, receive, send)
                    return
                _check_body(body)
                receive = _replay(body)
        except _Refused as refused:
            response = dashin_error_response(ValidationFailed("invalid input", [refused.error]))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _check_body(body: bytes) -> None:
    try:
        document = json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise _Refused("body", "too_deep", f"JSON nests deeper than {MAX_DEPTH}") from None
    except ValueError:
        return  # malformed JSON: FastAPI answers its own 422 naming the position
    check_json_value(document)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None once it passes the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def install_input_guard(app: FastAPI) -> None:
    app.add_middleware(InputGuard)
