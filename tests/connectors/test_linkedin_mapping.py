"""Lead Sync answers → leads and row errors (`connectors/providers/linkedin/mapping.py`).

Forms and responses are built in the documented shapes (`fixtures/linkedin/README.md`): a form's
`content.questions[{questionId, name, predefinedField}]`, a response's
`versionedLeadGenFormUrn` and `formResponse.answers[{questionId, answerDetails}]`.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.providers.linkedin.forms import form_from_body
from connectors.providers.linkedin.mapping import PREDEFINED_FIELDS, leads_from_elements
from records import LEAD_FIELDS

FORM_ID = "5928001"
FORM_URN = f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{FORM_ID},1)"


def form_body(*questions: tuple[int, str, str | None]) -> dict[str, Any]:
    """A `GET /rest/leadForms/{id}` body with (questionId, name, predefinedField) questions."""
    return {
        "id": int(FORM_ID),
        "name": "Demo request",
        "content": {
            "questions": [
                {"questionId": qid, "name": name}
                | ({"predefinedField": field} if field is not None else {})
                for qid, name, field in questions
            ]
        },
    }


def response(lead_id: str, *answers: tuple[int, str], urn: str | None = FORM_URN) -> dict[str, Any]:
    """A `leadFormResponses` element answering (questionId, text) pairs."""
    element: dict[str, Any] = {
        "id": lead_id,
        "submittedAt": 1711676389449,
        "testLead": False,
        "formResponse": {
            "answers": [
                {"answerDetails": {"textQuestionAnswer": {"answer": text}}, "questionId": qid}
                for qid, text in answers
            ],
            "consentResponses": [],
        },
    }
    if urn is not None:
        element["versionedLeadGenFormUrn"] = urn
    return element


FORM = form_from_body(
    form_body((40, "email", "EMAIL"), (41, "firstName", "FIRST_NAME"), (45, "budget", None))
)


def test_a_response_with_no_answer_to_a_mapped_question_is_a_no_answers_row_error() -> None:
    # Given a response answering only the custom question, one with a blank answer to a mapped
    # question, and one good response between them
    elements = [
        response("only-custom", (45, "Over 50k")),
        response("good", (40, "ada@analytical.example"), (41, "Ada")),
        response("blank", (40, "   "), (45, "Small")),
    ]
    leads, errors = leads_from_elements(
        elements, first=11, test_leads="skip", forms={FORM_ID: FORM}
    )
    # Then the good response is kept and the other two are row errors numbered from `first`
    assert [(r.external_id, r.email, r.first_name) for r in leads] == [
        ("good", "ada@analytical.example", "Ada")
    ]
    assert [(e.code, e.record, e.raw) for e in errors] == [
        ("no_answers", 11, "only-custom"),
        ("no_answers", 13, "blank"),
    ]
    assert "no answer to a mapped question" in errors[0].message


def test_a_response_naming_no_readable_form_is_a_form_unknown_row_error() -> None:
    # Given a response without a form URN, one whose URN is not a lead form's, and a good one
    elements = [
        response("no-urn", (40, "a@example.com"), urn=None),
        response("good", (40, "ada@analytical.example")),
        response("other-urn", (40, "b@example.com"), urn="urn:li:organization:1"),
    ]
    leads, errors = leads_from_elements(elements, first=1, test_leads="skip", forms={FORM_ID: FORM})
    # Then the good response is kept and the others are form_unknown errors quoting the URN
    assert [r.external_id for r in leads] == ["good"]
    assert [(e.code, e.record, e.raw) for e in errors] == [
        ("form_unknown", 1, "no-urn"),
        ("form_unknown", 3, "other-urn"),
    ]
    assert "None" in errors[0].message and "urn:li:organization:1" in errors[1].message


def test_a_form_that_answered_404_is_form_not_found_not_form_unknown() -> None:
    # `forms` holds None for a form that answered 404: its id is known, its questions are not
    elements = [response("gone", (40, "a@example.com"))]
    leads, errors = leads_from_elements(elements, first=1, test_leads="skip", forms={FORM_ID: None})
    assert leads == []
    assert [(e.code, e.raw) for e in errors] == [("form_not_found", "gone")]
    assert f"GET /rest/leadForms/{FORM_ID}" in errors[0].message


#: an answer for each lead field a predefinedField can fill, already in its normalised form
ANSWERS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@analytical.example",
    "company_name": "Analytical Engines Ltd",
    "title": "Head of Research",
    "phone": "+44 20 7946 0018",
    "city": "London",
    "state": "England",
    "country": "United Kingdom",
    "linkedin_url": "https://www.linkedin.com/in/ada-lovelace",
    "company_size": "51-200",
    "company_industry": "Computer Hardware",
}


#: LinkedIn's predefinedField → the lead field its answer fills, written out (not read from the
#: connector) so a wrong target fails here
MAPPED = [
    ("FIRST_NAME", "first_name"),
    ("LAST_NAME", "last_name"),
    ("EMAIL", "email"),
    ("WORK_EMAIL", "email"),
    ("COMPANY_NAME", "company_name"),
    ("JOB_TITLE", "title"),
    ("PHONE_NUMBER", "phone"),
    ("WORK_PHONE_NUMBER", "phone"),
    ("CITY", "city"),
    ("STATE", "state"),
    ("COUNTRY", "country"),
    ("LINKEDIN_PROFILE_LINK", "linkedin_url"),
    ("COMPANY_SIZE", "company_size"),
    ("INDUSTRY", "company_industry"),
]


def test_the_table_covers_every_predefined_field_the_connector_maps() -> None:
    assert {predefined for predefined, _ in MAPPED} == set(PREDEFINED_FIELDS)


@pytest.mark.parametrize(("predefined", "lead_field"), MAPPED)
def test_each_predefined_field_maps_to_its_lead_field(predefined: str, lead_field: str) -> None:
    # Given a form whose one predefined question asks for `predefined`, next to a custom one
    form = form_from_body(form_body((7, "asked", predefined), (8, "budget", None)))
    element = response("r-1", (8, "Over 50k"), (7, ANSWERS[lead_field]))
    # When the response is mapped
    [lead], errors = leads_from_elements(
        [element], first=1, test_leads="skip", forms={FORM_ID: form}
    )
    # Then the answer lands in that lead field, and in no other
    assert errors == []
    assert getattr(lead, lead_field) == ANSWERS[lead_field]
    filled = {f for f in LEAD_FIELDS if getattr(lead, f) is not None}
    assert filled == {lead_field}
    assert lead.external_id == "r-1"


def test_when_two_questions_fill_one_field_the_tables_preference_wins_not_the_answer_order() -> (
    None
):
    # Given a form asking both a work email and an email, and a response answering the work
    # email first
    form = form_from_body(
        form_body(
            (50, "workEmail", "WORK_EMAIL"),
            (51, "email", "EMAIL"),
            (52, "workPhone", "WORK_PHONE_NUMBER"),
            (53, "phone", "PHONE_NUMBER"),
        )
    )
    element = response(
        "both",
        (50, "ada@work.example"),
        (51, "ada@home.example"),
        (52, "+44 20 7946 0001"),
        (53, "+44 20 7946 0002"),
    )
    leads, errors = leads_from_elements(
        [element], first=1, test_leads="skip", forms={FORM_ID: form}
    )
    # Then EMAIL and PHONE_NUMBER, listed first in PREDEFINED_FIELDS, fill the lead
    assert errors == []
    assert (leads[0].email, leads[0].phone) == ("ada@home.example", "+44 20 7946 0002")
