"""A small Server-Sent-Events reader over a streaming httpx response (for the API tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    event: str | None
    id: str | None
    data: str
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


def read_events(response: httpx.Response) -> Iterator[Event]:
    """Events in arrival order; comments (keep-alives) come through as `Event(comment=...)`."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if fields or data:
                yield Event(fields.get("event"), fields.get("id"), "\n".join(data))
            fields, data = {}, []
        elif line.startswith(":"):
            yield Event(None, None, "", comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
    if fields or data:
        yield Event(fields.get("event"), fields.get("id"), "\n".join(data))


def take_until(events: Iterator[Event], predicate: Any) -> list[Event]:
    """Read events (comments skipped) up to and including the first one matching `predicate`."""
    seen: list[Event] = []
    for event in events:
        if event.comment is not None:
            continue
        seen.append(event)
        if predicate(event):
            return seen
    raise AssertionError(f"the stream ended before the awaited event; got {seen!r}")
