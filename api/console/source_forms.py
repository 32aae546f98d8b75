"""Data-source forms generated from a connector's `config_schema` (the JSON Schema pydantic
renders for its `Config`, as `GET /connectors` serves it), and the submitted form read back into
a config for the API's create/update.

Field kinds: text, number, integer, checkbox, select (an `enum`), json (objects, arrays,
unions of several types: typed as JSON text), and the write-only ones: password (`writeOnly` /
`format: password`) and secret_json (a map of secrets, e.g. headers). Those are never filled
in; left empty they keep the stored value, and a tick box clears it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import FieldError, ValidationFailed

PREFIX = "cfg."
CLEAR = "clear."


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # text | password | number | integer | checkbox | select | json
    required: bool
    description: str
    default: Any
    choices: tuple[str, ...] = ()

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    def shown(self, config: Mapping[str, Any]) -> str:
        """The current value as the input shows it (secrets never)."""
        if self.kind in ("password", "secret_json"):
            return ""
        value = config.get(self.name, self.default)
        if value is None:
            return ""
        if self.kind == "json":
            return json.dumps(value)
        return str(value)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: dict[str, Any] = schema.get("$defs", {}).get(ref.split("/")[-1], {})
        return resolved
    return node


def _secret(node: dict[str, Any]) -> bool:
    return bool(node.get("writeOnly") or node.get("format") == "password")


def _kind(schema: dict[str, Any], node: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    if _secret(node):
        return "password", ()
    if any(_secret(o.get("additionalProperties") or {}) for o in node.get("anyOf", [node])):
        return "secret_json", ()  # a map of secrets (headers, query params): JSON, write-only
    options = [o for o in node.get("anyOf", [node]) if o.get("type") != "null"]
    if len(options) != 1:
        secret = any(o.get("writeOnly") for o in options)
        return ("password", ()) if secret else ("json", ())
    option = _resolve(schema, options[0])
    if option.get("writeOnly") or option.get("format") == "password":
        return "password", ()
    if "enum" in option:
        return "select", tuple(str(v) for v in option["enum"])
    kind = {"string": "text", "integer": "integer", "number": "number", "boolean": "checkbox"}
    return kind.get(str(option.get("type")), "json"), ()


def fields(schema: dict[str, Any]) -> list[Field]:
    required = set(schema.get("required", []))
    found = []
    for name, node in schema.get("properties", {}).items():
        kind, choices = _kind(schema, node)
        found.append(
            Field(
                name=name,
                label=str(node.get("title", name)),
                kind=kind,
                required=name in required,
                description=str(node.get("description", "")),
                default=node.get("default"),
                choices=choices,
            )
        )
    return found


def read_config(
    form: Mapping[str, Any],
    schema_fields: list[Field],
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The config the form asks for. Creating (`current` None): empty inputs are left out.
    Editing (a PATCH that merges into `current`): an empty secret is kept unless `clear.<name>`
    is ticked; an emptied input clears a value that was set."""
    editing = current is not None
    config: dict[str, Any] = {}
    errors: list[FieldError] = []
    for field in schema_fields:
        raw = form.get(field.input_name)
        text = raw.strip() if isinstance(raw, str) else ""
        if field.kind in ("password", "secret_json"):
            if form.get(CLEAR + field.name) and editing:
                config[field.name] = None
            elif text and field.kind == "password":
                config[field.name] = text
            elif text:
                try:
                    config[field.name] = json.loads(text)
                except ValueError:
                    message = f"{field.label}: not valid JSON"
                    errors.append(FieldError(f"config.{field.name}", "invalid", message))
            continue
        if field.kind == "checkbox":
            config[field.name] = raw is not None
            continue
        if not text:
            if current is not None and current.get(field.name) is not None:
                config[field.name] = None
            continue
        try:
            if field.kind == "integer":
                config[field.name] = int(text)
            elif field.kind == "number":
                config[field.name] = float(text)
            elif field.kind == "json":
                config[field.name] = json.loads(text)
            else:
                config[field.name] = text
        except ValueError:
            message = f"{field.label}: not a valid {field.kind}"
            errors.append(FieldError(f"config.{field.name}", "invalid", message))
    if errors:
        raise ValidationFailed("; ".join(e.message for e in errors), errors)
    return config
