"""The shape of a JSON value, for contract tests that hold an emulator to a provider's
documented example: same keys, same JSON types, whatever the values."""

from __future__ import annotations

from typing import Any


def shape(value: Any) -> Any:
    """Keys and value types, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__
