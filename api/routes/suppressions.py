"""`/suppressions`: the domain's do-not-import list (opt-outs), kept as hashes of normalised keys.

Members and managers add entries (an opt-out may reach anyone), managers remove them, everyone
in the domain may check the list. Adding an entry also acts on the domain's existing leads it
matches, as the data policy says (`/data-policy`: tag them `suppressed`, or erase them).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile, status

from api.deps import ManagerDep, ReaderDep, SessionDep, SettingsDep, WriterDep
from api.pagination import Page, PageParamsDep, paginate
from api.problems import problem_responses
from api.schemas.privacy import (
    InvalidEntry,
    SuppressionKind,
    SuppressionOut,
    SuppressionsIn,
    SuppressionsOut,
)
from models import data_policy, suppressions
from models.suppressions import Suppression
from records.normalize import (
    LINKEDIN_PREFIX,
    header_key,
    normalize_domain,
    normalize_email,
    normalize_linkedin_url,
)
from runtime.errors import FieldError, ValidationFailed

router = APIRouter(prefix="/suppressions", tags=["suppressions"])

#: list field → (normaliser, key prefix, what a valid entry looks like)
_KINDS = {
    "emails": (normalize_email, "email:", "an email address"),
    "email_domains": (normalize_domain, "domain:", "a domain such as example.com"),
    "linkedin_urls": (normalize_linkedin_url, "li:", f"a profile URL such as {LINKEDIN_PREFIX}…"),
}
#: CSV header (letters and digits, lower case) → list field
_CSV_COLUMNS = {
    "email": "emails",
    "emails": "emails",
    "emailaddress": "emails",
    "workemail": "emails",
    "domain": "email_domains",
    "domains": "email_domains",
    "emaildomain": "email_domains",
    "linkedin": "linkedin_urls",
    "linkedinurl": "linkedin_urls",
    "personlinkedinurl": "linkedin_urls",
    "profileurl": "linkedin_urls",
}


def _keys(
    entries: Iterable[tuple[str, int, str]],
) -> tuple[list[str], list[InvalidEntry]]:
    """Normalised keys of (field, position, value) entries, and those that normalise to none."""
    keys: list[str] = []
    invalid: list[InvalidEntry] = []
    for field, position, value in entries:
        normalise, prefix, expected = _KINDS[field]
        clean = normalise(value)
        if clean is None:
            invalid.append(InvalidEntry(field=field, position=position, message=f"not {expected}"))
        else:
            keys.append(prefix + clean)
    return keys, invalid


def _apply(
    session: SessionDep,
    principal: WriterDep,
    keys: list[str],
    invalid: list[InvalidEntry],
    origin: str,
) -> SuppressionsOut:
    done = data_policy.suppress(
        session, principal.domain_id, keys, origin=origin, created_by=principal.user_id
    )
    return SuppressionsOut(
        added=done.added,
        already=done.already,
        leads_flagged=done.leads_flagged,
        leads_erased=done.leads_erased,
        invalid=invalid,
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, 422))
def create_suppressions(
    body: SuppressionsIn, principal: WriterDep, session: SessionDep
) -> SuppressionsOut:
    """Suppress emails, whole email domains and LinkedIn profiles, normalised as identity keys
    are (case, dots, URL forms). Entries that are not valid are skipped and listed."""
    entries = [
        (field, position, value)
        for field in _KINDS
        for position, value in enumerate(getattr(body, field))
    ]
    keys, invalid = _keys(entries)
    return _apply(session, principal, keys, invalid, "api")


@router.post("/import", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, 422))
def import_suppressions(
    file: Annotated[UploadFile, File(description="CSV with an email, domain or linkedin column")],
    principal: WriterDep,
    session: SessionDep,
    settings: SettingsDep,
) -> SuppressionsOut:
    """Suppress every entry of a CSV file (UTF-8 or Latin-1; `,` `;` or tab). Recognised
    columns: `email` (`Email Address`, `Work Email`), `domain` (`Email Domain`) and `linkedin`
    (`LinkedIn URL`); others are ignored. Invalid cells are skipped and listed by row."""
    data = file.file.read(settings.upload_max_bytes + 1)
    if len(data) > settings.upload_max_bytes:
        message = f"the file is larger than {settings.upload_max_bytes} bytes"
        raise ValidationFailed(message, [FieldError("file", "too_large", message)])
    keys, invalid = _keys(_csv_entries(data))
    return _apply(session, principal, keys, invalid, "import")


def _csv_entries(data: bytes) -> list[tuple[str, int, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    sample = text[:4096]
    delimiter = max(",;\t", key=sample.count) if sample else ","
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(rows, [])
    columns = {
        i: _CSV_COLUMNS[header_key(h)]
        for i, h in enumerate(header)
        if header_key(h) in _CSV_COLUMNS
    }
    if not columns:
        message = "the first row must name an email, domain or linkedin column"
        raise ValidationFailed(message, [FieldError("file", "no_known_column", message)])
    entries = []
    for number, row in enumerate(rows, start=2):
        for index, field in columns.items():
            if index < len(row) and row[index].strip():
                entries.append((field, number, row[index]))
    return entries


@router.get("", responses=problem_responses(422))
def list_suppressions(
    principal: ReaderDep,
    session: SessionDep,
    page: PageParamsDep,
    kind: SuppressionKind | None = None,
    value: Annotated[
        str | None,
        Query(
            max_length=500,
            description="an email, domain or LinkedIn URL: lists the entries that suppress it",
        ),
    ] = None,
) -> Page[SuppressionOut]:
    """The domain's entries, newest first. The list holds hashes only: look a person up with
    `value`."""
    keys: list[str] = []
    if value is not None:
        for field, (normalise, prefix, _) in _KINDS.items():
            clean = normalise(value)
            if clean is not None:
                keys.append(prefix + clean)
                if field == "emails":
                    keys.append("domain:" + clean.rsplit("@", 1)[1])
        if not keys:
            return Page[SuppressionOut](items=[], next_cursor=None)
    rows = paginate(
        session,
        suppressions.list_query(principal.domain_id, kind, keys),
        page,
        sortable={"created_at": Suppression.created_at},
        id_column=Suppression.id,
    )
    return rows.to_page([SuppressionOut.model_validate(s) for s in rows.rows])


@router.delete(
    "/{suppression_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
def delete_suppression(
    suppression_id: uuid.UUID, principal: ManagerDep, session: SessionDep
) -> Response:
    """Take an entry off the list (the person may be imported again; erased data stays gone)."""
    suppressions.remove(session, principal.domain_id, suppression_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
