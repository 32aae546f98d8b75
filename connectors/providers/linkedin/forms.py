"""Lead Gen Forms for the `linkedin` connector: which question each answer answers.

A `leadFormResponses` element names its form only by `versionedLeadGenFormUrn`
(`urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{formId},{version})`) and carries answers by
`questionId`; the questions, with the `predefinedField` that says what each one asks for, come
from `GET /rest/leadForms/{formId}`. A job asks for each form once (`FormCache`). A form that
answers 404 (deleted, or not the account's) is remembered as missing, so its responses become
row errors instead of a crash or one request per response. An element that embeds its form
(a request with a `form:(...)` field projection gets one) is read as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_VERSIONED = re.compile(r"^urn:li:versionedLeadGenForm:\(urn:li:leadGenForm:(\d+),\s*(\d+)\)$")
_PLAIN = re.compile(r"^urn:li:leadGenForm:(\d+)$")


@dataclass(frozen=True, slots=True)
class Question:
    question_id: str  # ids are numbers in the API; compared as text so "7" and 7 join
    name: str | None
    predefined_field: str | None  # None for a custom question


@dataclass(frozen=True, slots=True)
class LeadForm:
    form_id: str
    name: str | None
    questions: tuple[Question, ...]

    def question(self, question_id: Any) -> Question | None:
        return next((q for q in self.questions if q.question_id == str(question_id)), None)


def form_id_of(element: Mapping[str, Any]) -> str | None:
    """The form id inside an element's `versionedLeadGenFormUrn` (a plain form URN also works)."""
    urn = element.get("versionedLeadGenFormUrn")
    if not isinstance(urn, str):
        return None
    match = _VERSIONED.match(urn.strip()) or _PLAIN.match(urn.strip())
    return match.group(1) if match else None


def form_from_body(body: Any, form_id: str | None = None) -> LeadForm | None:
    """A `leadForms` entity (`{"id", "name", "content": {"questions": [...]}}`) → `LeadForm`."""
    if not isinstance(body, dict):
        return None
    content = body.get("content")
    raw_questions = content.get("questions") if isinstance(content, dict) else None
    if not isinstance(raw_questions, list):
        return None
    questions = tuple(
        Question(
            question_id=str(q["questionId"]),
            name=q.get("name") if isinstance(q.get("name"), str) else None,
            predefined_field=(
                q.get("predefinedField") if isinstance(q.get("predefinedField"), str) else None
            ),
        )
        for q in raw_questions
        if isinstance(q, dict) and q.get("questionId") is not None
    )
    name = body.get("name")
    return LeadForm(
        form_id=str(body.get("id") or form_id or ""),
        name=name if isinstance(name, str) else None,
        questions=questions,
    )


def embedded_form(element: Mapping[str, Any]) -> LeadForm | None:
    """The form an element carries itself (field projection `form:(...)`), if any."""
    return form_from_body(element.get("form"), form_id_of(element))


class FormCache:
    """Each form fetched at most once per job; `fetch(form_id)` answers None for a 404."""

    def __init__(self, fetch: Callable[[str], Any | None]) -> None:
        self._fetch = fetch
        self._forms: dict[str, LeadForm | None] = {}

    def forms_for(self, elements: Iterable[Mapping[str, Any]]) -> dict[str, LeadForm | None]:
        """The forms these elements need (None: not found), fetching the ones not seen yet."""
        for element in elements:
            form_id = form_id_of(element)
            if form_id is None or form_id in self._forms or embedded_form(element) is not None:
                continue
            body = self._fetch(form_id)
            self._forms[form_id] = None if body is None else form_from_body(body, form_id)
        return dict(self._forms)

    @property
    def fetched(self) -> int:
        return len(self._forms)
