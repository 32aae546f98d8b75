"""A tiny dotted-path reader for declarative configs (`data.items`, `owner.emails.0`).

Declarative connectors name where things sit in a response body with short dotted paths rather
than full JSONPath: a path is split on dots; each part is a mapping key, or, on a list, an index
(negative indexes count from the end). The empty path is the document itself. A path that does not
resolve yields the default instead of raising, because providers omit empty fields routinely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["MISSING", "get_path", "order_key", "parse_path", "read_fields", "read_scalar"]


class _Missing:
    """Sentinel for "the path does not resolve" (distinct from a JSON null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def parse_path(path: str) -> tuple[str, ...]:
    """Split a dotted path into its parts; raise ValueError for empty parts (`a..b`, `a.`)."""
    path = path.strip()
    if not path:
        return ()
    parts = tuple(path.split("."))
    if any(not part for part in parts):
        raise ValueError(f"invalid path {path!r}: empty segment")
    return parts


def get_path(document: Any, path: str | Sequence[str], default: Any = None) -> Any:
    """The value at `path` inside `document`, or `default` when any step is absent."""
    parts = parse_path(path) if isinstance(path, str) else tuple(path)
    current = document
    for part in parts:
        if isinstance(current, Mapping):
            if part not in current:
                return default
            current = current[part]
        elif isinstance(current, list):
            try:
                index = int(part)
            except ValueError:
                return default
            if not -len(current) <= index < len(current):
                return default
            current = current[index]
        else:
            return default
    return current


def read_scalar(document: Any, path: str) -> str | None:
    """The value at `path` as text, for lead fields: numbers become text; objects, lists, booleans,
    nulls and missing values become None."""
    value = get_path(document, path)
    if value is None or isinstance(value, bool | dict | list):
        return None
    return str(value)


def read_fields(document: Any, field_map: Mapping[str, str]) -> dict[str, str | None]:
    """Apply a field map (target name → dotted path) to one record."""
    return {name: read_scalar(document, path) for name, path in field_map.items()}


def order_key(value: Any) -> tuple[int, Any] | None:
    """A sort key for cursor values read from records (updated-at timestamps, sequence numbers).

    Numbers compare as numbers; ISO 8601 strings as instants (naive ones taken as UTC); other
    strings as text. Missing values, nulls, booleans, objects and lists give None (unusable).
    """
    if value is None or value is MISSING or isinstance(value, bool | dict | list):
        return None
    if isinstance(value, int | float):
        return (0, float(value))
    text = str(value)
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return (2, text)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return (1, instant.timestamp())
