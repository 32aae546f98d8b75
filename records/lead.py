"""`LeadRecord`, the one declaration of the lead fields, and `RecordError`.

Each lead field is declared once, here, with its column limit and how it is normalised (the
dataclass field's metadata). Everything else that lists lead fields derives from this class:
`LEAD_FIELDS` (the sink's columns, export columns, the generic API's field map, benchmark
samples), `FIELD_MAX_LEN` (the `leads` column widths, API limits, CSV cutting), `TEXT_FIELDS`
(cleaned and cut, never rejected) and the `LeadField` type a column mapping may target.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

#: how a field is normalised (records.normalize): free text is cleaned and cut; the identity
#: fields are parsed and become `None` when unusable
FieldKind = Literal["text", "email", "linkedin", "domain", "external_id"]


def _field(max_len: int, kind: FieldKind = "text") -> Any:
    return field(default=None, metadata={"max_len": max_len, "kind": kind})


@dataclass(frozen=True, slots=True)
class LeadRecord:
    """One person as a producer saw it. `records.normalize.normalize_record` cleans it; the sink
    normalises identity fields again (cheap and idempotent), so a raw record is safe too."""

    first_name: str | None = _field(200)
    last_name: str | None = _field(200)
    email: str | None = _field(320, "email")
    title: str | None = _field(300)
    company_name: str | None = _field(300)
    company_domain: str | None = _field(253, "domain")
    company_industry: str | None = _field(200)
    company_size: str | None = _field(50)
    linkedin_url: str | None = _field(500, "linkedin")
    phone: str | None = _field(50)
    city: str | None = _field(200)
    state: str | None = _field(200)
    country: str | None = _field(200)
    external_id: str | None = _field(300, "external_id")
    raw: dict[str, Any] | None = None


#: (name, column limit, kind) of every declared field, `external_id` included, in order
FIELD_SPECS: tuple[tuple[str, int, FieldKind], ...] = tuple(
    (f.name, f.metadata["max_len"], f.metadata["kind"]) for f in fields(LeadRecord) if f.metadata
)
#: the lead columns a record fills, in declaration order
LEAD_FIELDS: tuple[str, ...] = tuple(n for n, _, kind in FIELD_SPECS if kind != "external_id")
#: column limits of the `leads` table (and `lead_sources.external_id`); longer text is cut to fit
FIELD_MAX_LEN: dict[str, int] = {name: max_len for name, max_len, _ in FIELD_SPECS}
#: lead fields that are free text (cleaned and cut, never rejected)
TEXT_FIELDS: tuple[str, ...] = tuple(n for n, _, kind in FIELD_SPECS if kind == "text")

if TYPE_CHECKING:
    LeadField = str
else:
    #: a lead field a header or a column mapping may target (an enum in JSON schemas)
    LeadField = Literal[LEAD_FIELDS]


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record the connector could not turn into a lead; reported, never silently dropped."""

    code: str
    message: str
    record: int | None = None  # 1-based data record number
    line: int | None = None  # physical line where the record starts (files)
    field: str | None = None
    raw: str | None = None
