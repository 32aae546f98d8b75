"""Field types shared by several resources' schemas."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any, Literal, Self, TypeVar

from publicsuffixlist import PublicSuffixList
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

MemberRole = Literal["manager", "member", "viewer"]

# Labels of letters, digits and inner hyphens; the last label starts with a letter (no IPs).
DOMAIN_NAME_PATTERN = (
    r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)


def _lower(value: str) -> str:
    return value.lower()


@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    """The Public Suffix List snapshot bundled with the package: offline, read once."""
    return PublicSuffixList()


def _not_a_public_suffix(value: str) -> str:
    """`co.uk`, `com` or `github.io` belong to no one company: nobody may found or rename a
    tenant to one (issue 14, M2)."""
    if _public_suffixes().is_public(value):
        raise ValueError(f"{value} is a public suffix, not a company's domain")
    return value


DomainName = Annotated[
    str,
    StringConstraints(min_length=3, max_length=253, pattern=DOMAIN_NAME_PATTERN),
    AfterValidator(_lower),
    AfterValidator(_not_a_public_suffix),
]
Email = Annotated[EmailStr, AfterValidator(_lower)]
Password = Annotated[str, Field(min_length=10, max_length=256)]
# PostgreSQL text and jsonb cannot hold NUL characters: refuse them at the edge (422), not in
# the database (500).
NO_NUL_PATTERN = r"^[^\x00]*$"
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_NUL_PATTERN),
]


def _no_nul_in_json(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul_in_json(key)
            _no_nul_in_json(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul_in_json(item)
    return value


#: a free-form JSON field (custom fields, job params, a source's config, criteria) is stored as
#: jsonb and read back on every list: 64 KiB of JSON text each (issue 14: 20 MB ones were stored)
MAX_JSON_FIELD_BYTES = 64 * 1024


def _bounded_json(value: Any) -> Any:
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_JSON_FIELD_BYTES:
        raise ValueError(f"must be at most {MAX_JSON_FIELD_BYTES} bytes as JSON, not {size}")
    return value


JsonObject = Annotated[
    dict[str, Any], AfterValidator(_no_nul_in_json), AfterValidator(_bounded_json)
]
#: one short text item of a list (a UTM value, a label)
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)]

# Response models read attributes straight from ORM rows.
FROM_ORM = ConfigDict(from_attributes=True)
M = TypeVar("M", bound=BaseModel)


def from_row(model: type[M], row: object, **computed: Any) -> M:
    """`model` with each field read from `row`'s attribute of the same name, but for `computed`.

    Why: an output schema mirrors its table column for column; spelling out the copy by hand
    repeated every field name once more, and only the fields that differ carry information.
    """
    copied = {name: getattr(row, name) for name in model.model_fields if name not in computed}
    return model(**copied, **computed)


def example(*values: dict[str, Any]) -> ConfigDict:
    """`model_config` documenting examples of a body, request or response: `/docs` and generated
    clients show them, and schemathesis sends a request body's first. Each must validate against
    its model (tests/api/test_openapi.py checks every schema in the document)."""
    return ConfigDict(json_schema_extra={"examples": list(values)})


def example_of(model: type[BaseModel]) -> dict[str, Any] | None:
    """The first example `example()` gave `model`, if any (a page's example is built from its
    items')."""
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    first = examples[0] if isinstance(examples, list) and examples else None
    return dict(first) if isinstance(first, dict) else None


class RowOut(BaseModel):
    """An output read off a row's same-named attributes (an ORM object or a result row), so a
    wire shape that mirrors its table needs no field-by-field copy."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def build(cls, row: Any) -> Self:
        return cls.model_validate(row)
