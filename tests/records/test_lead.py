"""records.lead: the one declaration of the lead fields, and what derives from it."""

from __future__ import annotations

from dataclasses import fields
from typing import get_args

from api.schemas.data_sources import SampleLead
from models.leads_bulk import EXPORT_COLUMNS
from records import FIELD_MAX_LEN, LEAD_FIELDS, TEXT_FIELDS, LeadField, LeadRecord
from records.normalize import normalize_record


def test_the_thirteen_lead_fields_come_from_the_record_declaration() -> None:
    declared = [f.name for f in fields(LeadRecord)]
    assert declared[: len(LEAD_FIELDS)] == list(LEAD_FIELDS)
    assert len(LEAD_FIELDS) == 13
    assert get_args(LeadField) == LEAD_FIELDS
    assert set(FIELD_MAX_LEN) == {*LEAD_FIELDS, "external_id"}
    assert "email" not in TEXT_FIELDS and "company_size" in TEXT_FIELDS


def test_schemas_and_exports_list_every_declared_field() -> None:
    assert list(SampleLead.model_fields) == [*LEAD_FIELDS, "external_id"]
    assert EXPORT_COLUMNS[1 : 1 + len(LEAD_FIELDS)] == LEAD_FIELDS


def test_normalize_record_uses_each_fields_declared_kind_and_width() -> None:
    record = LeadRecord(
        first_name="  Ann\tMarie ",
        email=" Ann@Example.COM ",
        company_domain="https://www.Contoso.example/about",
        linkedin_url="http://de.linkedin.com/in/Ann-X/?trk=1",
        company_size="9" * 80,
        external_id="  x1 ",
        raw={"k": 1},
    )
    out = normalize_record(record)
    assert out.first_name == "Ann Marie"
    assert out.email == "ann@example.com"
    assert out.company_domain == "contoso.example"
    assert out.linkedin_url == "https://www.linkedin.com/in/ann-x"
    assert out.company_size == "9" * FIELD_MAX_LEN["company_size"]
    assert out.external_id == "x1"
    assert out.raw == {"k": 1}
    assert normalize_record(out) == out
