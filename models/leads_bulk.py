"""Bulk lead actions (one transaction, per-id results) and the streaming export.

Bulk actions lock the selected visible leads (`FOR UPDATE`, id order so two bulk calls cannot
deadlock), decide per lead, then apply one set-based statement to the leads that passed. The
caller's transaction makes it all-or-nothing for the rows that passed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from models import leads_repo, row_security
from models.leads import Lead
from models.leads_repo import LeadFilter, LeadScope
from records import LEAD_FIELDS
from runtime.errors import Conflict, FieldError, ValidationFailed

MAX_BULK = 1000


@dataclass(frozen=True)
class BulkResult:
    id: uuid.UUID
    ok: bool
    code: str | None = None
    message: str | None = None


def select_targets(
    session: Session,
    scope: LeadScope,
    *,
    ids: list[uuid.UUID] | None,
    lead_filter: LeadFilter | None,
) -> tuple[list[Lead], list[BulkResult]]:
    """The visible leads to act on, locked, and a `not_found` result for each id not among them."""
    query = leads_repo.leads_query(scope, lead_filter and leads_repo.narrow(session, lead_filter))
    if ids is not None:
        query = query.where(Lead.id.in_(ids))
    leads = list(session.scalars(query.order_by(Lead.id).limit(MAX_BULK + 1).with_for_update()))
    if len(leads) > MAX_BULK:
        message = f"the filter matches more than {MAX_BULK} leads; narrow it"
        raise ValidationFailed(message, [FieldError("filter", "too_many", message)])
    found = {lead.id for lead in leads}
    missing = [
        BulkResult(i, False, "not_found", "lead not found")
        for i in dict.fromkeys(ids or [])
        if i not in found
    ]
    return leads, missing


def bulk_update(
    session: Session, scope: LeadScope, leads: list[Lead], changes: dict[str, Any]
) -> list[BulkResult]:
    """Apply `changes` to every lead whose status move (if any) is allowed."""
    if "campaign_id" in changes:
        leads_repo.check_campaign(session, scope, changes["campaign_id"])
    results: list[BulkResult] = []
    passed: list[uuid.UUID] = []
    for lead in leads:
        try:
            if "status" in changes:
                leads_repo.check_transition(lead.status, changes["status"])
        except Conflict as exc:
            results.append(BulkResult(lead.id, False, exc.code, exc.message))
            continue
        passed.append(lead.id)
        results.append(BulkResult(lead.id, True))
    if passed and changes:
        session.execute(update(Lead).where(Lead.id.in_(passed)).values(**changes))
    return results


def bulk_delete(session: Session, leads: list[Lead]) -> list[BulkResult]:
    ids = [lead.id for lead in leads]
    leads_repo.soft_delete(session, ids)
    return [BulkResult(i, True) for i in ids]


def bulk_assign(
    session: Session, scope: LeadScope, leads: list[Lead], assignee: uuid.UUID
) -> list[BulkResult]:
    ids = [lead.id for lead in leads]
    leads_repo.assign(session, scope.domain_id, ids, assignee, scope.user_id)
    return [BulkResult(i, True) for i in ids]


EXPORT_COLUMNS = (
    "id",
    *LEAD_FIELDS,
    "status",
    "priority",
    "score",
    "tags",
    "campaign_id",
    "assigned_to",
    "created_at",
)


#: `GET /leads/export?format=` values and what each answers as
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
#: Leading characters a spreadsheet reads as a formula (OWASP CSV injection), plus tab and CR:
#: the CSV export prefixes such a cell with `'`
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: bytes gathered before a chunk is handed to the response: one COPY row is one message, and
#: a send per row would cost more than the COPY
EXPORT_CHUNK = 64 * 1024

# JSON lines through COPY's CSV format with a quote and a delimiter that JSON text never holds
# raw (it escapes control characters): every line is the JSON text, unquoted and unescaped
# (the text format would double every backslash).
_COPY_OPTIONS = {
    "csv": "(FORMAT csv, HEADER)",
    "jsonl": "(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')",
}


def _iso(column: ColumnElement[Any]) -> ColumnElement[str]:
    """`datetime.isoformat()` of a timestamptz, in UTC, as the row export wrote it."""
    return func.to_char(func.timezone("UTC", column), literal('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))


def _no_formula(value: ColumnElement[str]) -> ColumnElement[str]:
    risky = func.left(value, 1).in_(FORMULA_PREFIXES)
    return case((risky, literal("'") + value), else_=value)


def _cells(fmt: str) -> list[ColumnElement[Any]]:
    """The export's columns, each under its name: `created_at` as ISO 8601 in UTC in both
    formats; for CSV (read by spreadsheets) tags joined with `;` and formula cells neutralised."""
    cells: list[ColumnElement[Any]] = []
    for name in EXPORT_COLUMNS:
        column: ColumnElement[Any] = getattr(Lead, name)
        if name == "created_at":
            column = _iso(column)
        elif fmt == "csv" and name in LEAD_FIELDS:
            column = _no_formula(column)
        elif fmt == "csv" and name == "tags":
            column = _no_formula(func.array_to_string(column, literal(";")))
        cells.append(column.label(name))
    return cells


def _json_lines(rows: Select[Any]) -> Select[Any]:
    """One JSON line per row of `rows` (the export's cells, filtered and ordered): `row_to_json`
    of the row, each cell under its column name, no space after `:` and `,`.

    Why `row_to_json` and not `json_build_object`: the same keys in the same order, values and
    types, but a row's keys come from its type, not 40 arguments per row: 3.2 s of backend CPU
    per million leads instead of 4.7 (docs/BENCHMARKS.md, session 7). Why of an ordered
    subquery and not of a LATERAL row beside `leads`: under the domain's row-level security the
    planner sorted the finished JSON (533 MB spilled to disk for 1M leads) instead of reading
    the `(domain_id, created_at, id)` index in order; the subquery is planned like the CSV
    export, and a scan of it keeps its order (docs/BENCHMARKS.md, session 9)."""
    lead_row = rows.subquery("lead_row")
    line = cast(func.row_to_json(literal_column(lead_row.name)), String).label("line")
    return select(line).select_from(lead_row)


def export_copy(
    conn: Connection,
    scope: LeadScope,
    lead_filter: LeadFilter,
    fmt: str = "csv",
    *,
    timeout_s: float | None = None,
) -> Iterator[bytes]:
    """Every matching lead, as CSV (header, EXPORT_COLUMNS, formula cells neutralised) or JSON
    lines, streamed by `COPY (SELECT …) TO STDOUT` in chunks of about EXPORT_CHUNK bytes.

    Why COPY: the server formats the rows and the client only forwards bytes, so the export
    runs at the database's speed (a Python row loop topped out at ~15k rows/s) and memory stays
    flat whatever the filters. The SELECT is the same `visible` + `filter_clauses` as every
    other read, so tenant and member scoping cannot drift from the list's. Runs in `conn`'s
    transaction (one snapshot for the whole file). The whole export is one statement: with
    `timeout_s`, it is bounded by that instead of the connection's `statement_timeout`
    (the API's 15 s would cut off any export of a million leads)."""
    row_security.apply(conn, scope.domain_id, scope.client_ids)  # its own connection: no hook
    if timeout_s is not None:
        conn.execute(
            text("SELECT set_config('statement_timeout', :ms, true)"),
            {"ms": str(max(1, round(timeout_s * 1000)))},
        )
    lead_filter = leads_repo.narrow(conn, lead_filter)
    query = select(*_cells(fmt))
    query = query.where(leads_repo.visible(scope), *leads_repo.filter_clauses(lead_filter))
    query = query.order_by(Lead.created_at, Lead.id)
    if fmt == "jsonl":
        query = _json_lines(query)
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    statement = f"COPY ({compiled.string}) TO STDOUT {_COPY_OPTIONS[fmt]}"
    driver: Any = conn.connection.driver_connection
    buffered = bytearray()
    with driver.cursor() as cursor, cursor.copy(statement, compiled.params) as copy:
        for data in copy:
            buffered += data
            if len(buffered) >= EXPORT_CHUNK:
                yield bytes(buffered)
                buffered.clear()
    if buffered:
        yield bytes(buffered)
