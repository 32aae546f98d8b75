"""Lead Sync answers → leads for the `linkedin` connector.

A lead form response carries answers by `questionId`; the form's questions (`linkedin_forms`:
fetched from `GET /rest/leadForms/{id}`, or embedded in the element) say which
`predefinedField` each one asks for. Answers to predefined questions become `LeadRecord` fields
(custom questions stay in `raw`). A response whose form is unknown or gone, or that has no
answer to a mapped question, is a row error; test leads are skipped or kept tagged, as the data
source says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from connectors.providers.linkedin.forms import LeadForm, embedded_form, form_id_of
from records import LeadRecord, RecordError
from records.normalize import normalize_record

#: predefinedField → LeadRecord field, in order of preference when several map to one field
PREDEFINED_FIELDS: dict[str, str] = {
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "WORK_EMAIL": "email",
    "COMPANY_NAME": "company_name",
    "JOB_TITLE": "title",
    "PHONE_NUMBER": "phone",
    "WORK_PHONE_NUMBER": "phone",
    "CITY": "city",
    "STATE": "state",
    "COUNTRY": "country",
    "LINKEDIN_PROFILE_LINK": "linkedin_url",
    "COMPANY_SIZE": "company_size",
    "INDUSTRY": "company_industry",
}
_PREFERENCE = {field: rank for rank, field in enumerate(PREDEFINED_FIELDS)}


def lead_from_element(
    element: dict[str, Any], *, tag_test: bool, form: LeadForm | None = None
) -> LeadRecord | None:
    """Join answers to the form's questions by questionId and map predefined fields.

    The element's own embedded form wins over `form`; None when no answer maps to a field.
    """
    form = embedded_form(element) or form
    if form is None:
        return None
    answers = ((element.get("formResponse") or {}).get("answers")) or []
    chosen: dict[str, tuple[int, str]] = {}  # lead field → (preference, answer)
    for answer in answers:
        if not isinstance(answer, dict):
            continue
        question = form.question(answer.get("questionId"))
        field = question.predefined_field if question is not None else None
        target = PREDEFINED_FIELDS.get(field or "")
        text = ((answer.get("answerDetails") or {}).get("textQuestionAnswer") or {}).get("answer")
        if target is None or not isinstance(text, str) or not text.strip():
            continue
        rank = _PREFERENCE[field or ""]
        if target not in chosen or rank < chosen[target][0]:
            chosen[target] = (rank, text)
    values = {target: text for target, (_, text) in chosen.items()}
    if not values:
        return None
    raw = dict(element)
    if tag_test and element.get("testLead"):
        raw["test_lead"] = True
    return normalize_record(LeadRecord(external_id=str(element.get("id") or ""), raw=raw, **values))


def leads_from_elements(
    elements: list[dict[str, Any]],
    *,
    first: int,
    test_leads: Literal["skip", "tag"],
    forms: Mapping[str, LeadForm | None] | None = None,
) -> tuple[list[LeadRecord], list[RecordError]]:
    """One page of lead form responses → (leads, row errors), numbered from `first`.

    `forms` holds the page's forms by id (None: the form answered 404).
    """
    records, errors = [], []
    forms = forms or {}
    for number, element in enumerate(elements, start=first):
        if element.get("testLead") and test_leads == "skip":
            continue
        raw = str(element.get("id"))
        form_id = form_id_of(element)
        form = forms.get(form_id) if form_id is not None else None
        if embedded_form(element) is None and form is None:
            code, message = _form_problem(element, form_id)
            errors.append(RecordError(code=code, message=message, record=number, raw=raw))
            continue
        lead = lead_from_element(element, tag_test=test_leads == "tag", form=form)
        if lead is None:
            message = "lead form response has no answer to a mapped question"
            errors.append(RecordError(code="no_answers", message=message, record=number, raw=raw))
        else:
            records.append(lead)
    return records, errors


def _form_problem(element: dict[str, Any], form_id: str | None) -> tuple[str, str]:
    if form_id is None:
        urn = element.get("versionedLeadGenFormUrn")
        return "form_unknown", f"lead form response names no readable lead form ({urn!r})"
    return (
        "form_not_found",
        f"lead form {form_id} was not found (GET /rest/leadForms/{form_id}): "
        "its questions, and so this response's fields, are unknown",
    )
