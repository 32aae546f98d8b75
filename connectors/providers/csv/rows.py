"""Rows → leads for the `csv` connector: one file layout's records become `LeadRecord`s or
`RecordError`s.

This is the per-row hot path of multi-million-row imports, kept apart from the connector's file
handling (sources, sniffing, checkpoints in `.connector`) so each can be read on its own.

Row rules (documented for operators in the job's row errors):

- A row needs a valid email or a LinkedIn profile URL; without either it is rejected with
  code `no_identity` and `field` naming the offending column.
- A row with a malformed email but a valid LinkedIn URL is *kept* with `email = None`: the
  LinkedIn URL identifies the person, and rejecting them would lose a good lead. It is not a
  row error (row errors are rejected records: `fetched = inserted + ... + rejected` must
  balance); each page logs `csv.values_dropped` with counts and examples instead. The same
  holds for a malformed LinkedIn URL next to a valid email.
- Text longer than its column is cut to fit (`normalize.FIELD_MAX_LEN`); rows with non-empty
  cells beyond the header's width are rejected (`too_many_fields`: the row is misaligned);
  broken quoting is rejected (`bad_quoting`, `unterminated_quote`, `record_too_large`).
- Blank lines and rows whose cells are all empty are skipped silently.
- Duplicates are not collapsed here: the lead sink's identity resolution does that, so no
  memory grows with the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from operator import itemgetter
from typing import Any

from connectors.errors import ConfigError
from connectors.kit.csv_reader import Record, decode_line
from records import FIELD_MAX_LEN, TEXT_FIELDS, LeadField, LeadRecord, RecordError
from records.normalize import (
    clean_text,
    field_for_header,
    normalize_domain,
    normalize_linkedin_url,
    parse_email,
)

#: Raw record text kept in a row error.
RAW_MAX_CHARS = 1000
#: Examples of dropped values logged per page.
DROPPED_EXAMPLES = 5


@dataclass
class DroppedValues:
    """Values removed from kept rows (a bad email next to a good LinkedIn URL), per page."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, code: str, record: Record, column: str, value: str) -> None:
        self.counts[code] = self.counts.get(code, 0) + 1
        if len(self.examples) < DROPPED_EXAMPLES:
            self.examples.append(
                {
                    "record": record.number,
                    "line": record.line,
                    "field": column,
                    "code": code,
                    "value": value[:200],
                }
            )


#: LeadRecord's fields in constructor order, for positional construction on the hot path.
_SLOTS: tuple[str, ...] = tuple(f.name for f in fields(LeadRecord))
#: Websites repeat across a company's people: normalised ones are remembered, boundedly.
_DOMAIN_CACHE_SIZE = 4096


class RowMapper:
    """Turns records of one file layout into `LeadRecord`s or `RecordError`s."""

    def __init__(
        self,
        header: tuple[str, ...],
        overrides: Mapping[str, LeadField | None],
        encoding: str = "utf-8",
    ) -> None:
        self._header = header
        self._encoding = encoding
        self._width = len(header)
        self._fields: dict[str, LeadField | None] = {}
        columns: dict[LeadField, int] = {}
        for index, text in enumerate(header):
            lead_field = field_for_header(text, overrides)
            self._fields[text] = lead_field
            if lead_field is not None:
                columns.setdefault(lead_field, index)  # the first column for a field wins
        if "email" not in columns and "linkedin_url" not in columns:
            raise ConfigError(
                "the header has no email or LinkedIn URL column, so no row could identify a "
                f"lead; columns: {', '.join(header)} (map one with column_map)"
            )
        self._email = columns.get("email")
        self._linkedin = columns.get("linkedin_url")
        self._domain = columns.get("company_domain")
        # Per-row values are the header's cells followed by these extras; `_arrange` picks
        # LeadRecord's arguments out of them (unmapped fields take the trailing None).
        width = len(header)
        extra = {"email": width, "linkedin_url": width + 1, "company_domain": width + 2}
        extra |= {"raw": width + 3}
        self._arrange = itemgetter(
            *(
                columns[name]
                if name in TEXT_FIELDS and name in columns
                else extra.get(name, width + 4)
                for name in _SLOTS
            )
        )
        self._length_checks = sorted(
            ((i, FIELD_MAX_LEN[f]) for f, i in columns.items() if f in TEXT_FIELDS),
            key=lambda check: check[1],
        )
        self._domains: dict[str, str | None] = {}
        self._dropped = DroppedValues()

    def describe(self) -> dict[str, str | None]:
        """Header text → the lead field its column fills (None: kept in `raw` only)."""
        return dict(self._fields)

    def take_dropped(self) -> DroppedValues:
        dropped, self._dropped = self._dropped, DroppedValues()
        return dropped

    def map(self, record: Record) -> LeadRecord | RecordError | None:
        """A lead, a row error, or None for a row of empty cells."""
        leads, errors, _ = self.map_many((record,))
        return leads[0] if leads else errors[0] if errors else None

    def map_many(
        self, records: Iterable[Record]
    ) -> tuple[list[LeadRecord], list[RecordError], int]:
        """Map records to (leads, row errors, records consumed).

        This loop runs per row on multi-million-row files, so it is written for speed: the
        mapper's state is read into locals once, the whole row is checked for control
        characters and double spaces at once instead of per cell, one comprehension strips
        the cells, and one itemgetter lays them out in LeadRecord's positional order. Rare
        cases (misfit rows, identity problems) leave the loop through helper methods.
        """
        leads: list[LeadRecord] = []
        errors: list[RecordError] = []
        consumed = 0
        width, ei, li, di = self._width, self._email, self._linkedin, self._domain
        header, arrange, length_checks, domains = (
            self._header,
            self._arrange,
            self._length_checks,
            self._domains,
        )
        for record in records:
            consumed += 1
            cells = record.cells
            if cells is None or len(cells) != width:
                fitted = self._fit(record)
                if isinstance(fitted, RecordError):
                    errors.append(fitted)
                    continue
                cells = fitted
            values: list[Any] = [cell.strip() or None for cell in cells]
            email, email_problem = parse_email(values[ei]) if ei is not None else (None, None)
            linkedin = normalize_linkedin_url(values[li]) if li is not None else None
            if email_problem is not None or (
                linkedin is None and (email is None or (li is not None and values[li]))
            ):
                outcome = self._identity_problems(record, values, email, email_problem, linkedin)
                if outcome is not False:
                    if isinstance(outcome, RecordError):
                        errors.append(outcome)
                    continue
            row_text = "".join(cells)
            if not row_text.isprintable() or "  " in row_text:
                values = [clean_text(value) for value in values]
            row_len = len(row_text)
            for index, max_len in length_checks:
                if max_len >= row_len:
                    break  # sorted by limit: no cell of this row can be longer
                value = values[index]
                if value is not None and len(value) > max_len:
                    values[index] = clean_text(value, max_len)
            domain = None
            if di is not None and values[di] is not None:
                try:
                    domain = domains[values[di]]
                except KeyError:
                    domain = normalize_domain(values[di])
                    if len(domains) >= _DOMAIN_CACHE_SIZE:
                        domains.clear()
                    domains[values[di]] = domain
            # cells has the header's width here; zip(strict=True) would double the cost
            values += (email, linkedin, domain, dict(zip(header, cells, strict=False)), None)
            leads.append(LeadRecord(*arrange(values)))
        return leads, errors, consumed

    def _fit(self, record: Record) -> list[str] | RecordError:
        """The record's cells cut or padded to the header's width, or why it is rejected."""
        cells = record.cells
        width = self._width
        if cells is None:
            problem = record.problem or "bad_quoting"
            code = problem if problem in _QUOTING_MESSAGES else "bad_quoting"
            return self._error(record, code, _QUOTING_MESSAGES.get(code, problem), None)
        if len(cells) > width and any(cell.strip() for cell in cells[width:]):
            return self._error(
                record,
                "too_many_fields",
                f"the row has {len(cells)} cells but the header has {width}: an unquoted "
                "delimiter inside a value?",
                None,
            )
        return cells[:width] + [""] * (width - len(cells))

    def _identity_problems(
        self,
        record: Record,
        values: list[Any],
        email: str | None,
        email_problem: str | None,
        linkedin: str | None,
    ) -> RecordError | bool:
        """A row error for a row without identity, True to skip an empty row, or False to keep
        the row (after noting the values dropped from it)."""
        ei, li = self._email, self._linkedin
        linkedin_bad = linkedin is None and li is not None and values[li] is not None
        if email is None and linkedin is None:
            if not any(values):
                return True
            return self._no_identity(record, values, email_problem, linkedin_bad)
        if email_problem == "invalid" and ei is not None:
            self._dropped.add("invalid_email", record, self._header[ei], values[ei])
        if linkedin_bad and li is not None:
            self._dropped.add("invalid_linkedin_url", record, self._header[li], values[li])
        return False

    def _no_identity(
        self,
        record: Record,
        values: list[Any],
        email_problem: str | None,
        linkedin_bad: bool,
    ) -> RecordError:
        ei, li = self._email, self._linkedin
        email_raw = values[ei] if ei is not None else None
        linkedin_raw = values[li] if li is not None else None
        column_index = ei if ei is not None else li
        if email_problem == "invalid":
            message = f"{email_raw!r} is not a valid email address"
        elif email_problem == "placeholder":
            message = f"{email_raw!r} is a placeholder, not an email address"
        elif linkedin_bad:
            column_index = li
            message = f"{linkedin_raw!r} is not a LinkedIn profile URL"
        else:
            message = "the row has no email"
        if linkedin_bad and column_index != li:
            message += f", and {linkedin_raw!r} is not a LinkedIn profile URL"
        elif not linkedin_bad:
            message += " and no LinkedIn profile URL"
        column = self._header[column_index] if column_index is not None else None
        return self._error(record, "no_identity", message, column)

    def _error(self, record: Record, code: str, message: str, column: str | None) -> RecordError:
        raw = b"".join(record.raw_lines)[: RAW_MAX_CHARS * 4]
        text = decode_line(raw, self._encoding).rstrip("\r\n")
        return RecordError(
            code=code,
            message=message,
            record=record.number,
            line=record.line,
            field=column,
            raw=text[:RAW_MAX_CHARS],
        )


_QUOTING_MESSAGES = {
    "unterminated_quote": "a quoted value is never closed; reading went on from the next line",
    "record_too_large": "the record is larger than 1 MiB (an unclosed quote?); reading went on "
    "from the next line",
}
