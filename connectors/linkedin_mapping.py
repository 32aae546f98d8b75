"""Lead Sync answers → leads for the `linkedin` connector.

A lead form response carries answers by `questionId`; the form's questions say which
`predefinedField` each one asks for. Answers to predefined questions become `LeadRecord` fields
(custom questions stay in `raw`); a response with no mapped answer is a row error, and test leads
are skipped or kept tagged, as the data source says.
"""

from __future__ import annotations

from typing import Any, Literal

from connectors.base import LeadRecord, RecordError
from connectors.normalize import normalize_record

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


def lead_from_element(element: dict[str, Any], *, tag_test: bool) -> LeadRecord | None:
    """Join answers to questions by questionId and map predefined fields; None without answers."""
    questions = ((element.get("form") or {}).get("content") or {}).get("questions") or []
    by_id = {q.get("questionId"): q for q in questions if isinstance(q, dict)}
    answers = ((element.get("formResponse") or {}).get("answers")) or []
    values: dict[str, str] = {}
    for answer in answers:
        question = by_id.get(answer.get("questionId")) or {}
        target = PREDEFINED_FIELDS.get(str(question.get("predefinedField") or ""))
        text = ((answer.get("answerDetails") or {}).get("textQuestionAnswer") or {}).get("answer")
        if target is None or not isinstance(text, str) or not text.strip():
            continue
        values.setdefault(target, text)  # the first (preferred) answer wins
    if not values:
        return None
    raw = dict(element)
    if tag_test and element.get("testLead"):
        raw["test_lead"] = True
    return normalize_record(LeadRecord(external_id=str(element.get("id") or ""), raw=raw, **values))


def leads_from_elements(
    elements: list[dict[str, Any]], *, first: int, test_leads: Literal["skip", "tag"]
) -> tuple[list[LeadRecord], list[RecordError]]:
    """One page of lead form responses → (leads, row errors), numbered from `first`."""
    records, errors = [], []
    for number, element in enumerate(elements, start=first):
        if element.get("testLead") and test_leads == "skip":
            continue
        lead = lead_from_element(element, tag_test=test_leads == "tag")
        if lead is None:
            message = "lead form response has no answer to a mapped question"
            raw = str(element.get("id"))
            errors.append(RecordError(code="no_answers", message=message, record=number, raw=raw))
        else:
            records.append(lead)
    return records, errors
