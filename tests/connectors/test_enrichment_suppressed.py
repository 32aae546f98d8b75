"""A suppressed person is never paid for: `enrich_batches` asks the run context first."""

from __future__ import annotations

from typing import Any

from connectors.base import LeadRecord
from connectors.kit.enrichment import enrich_batches
from connectors.kit.testing import LocalRunContext


def _lead(person: dict[str, Any]) -> LeadRecord:
    return LeadRecord(linkedin_url=person.get("linkedin_url"), external_id=str(person["id"]))


def test_suppressed_people_are_left_out_of_paid_calls() -> None:
    # Given a domain that suppressed one person by LinkedIn URL and another by provider id
    ctx = LocalRunContext(suppress={"li:https://www.linkedin.com/in/opted-out", "ext:apollo:p3"})
    people = [
        {"id": "p1", "linkedin_url": "http://linkedin.com/in/Opted-Out"},
        {"id": "p2"},
        {"id": "p3"},
        {"id": "p4"},
    ]
    sent: list[str] = []

    def match(batch: list[dict[str, Any]]) -> tuple[dict[str, Any], int]:
        sent.extend(p["id"] for p in batch)
        return {p["id"]: {"email": f"{p['id']}@x.example"} for p in batch}, len(batch)

    # When the page is enriched with room for everyone
    result = enrich_batches(
        people,
        10,
        batch_size=10,
        worth=lambda p: True,
        match=match,
        provider="apollo",
        what="people",
        ctx=ctx,
        to_lead=_lead,
    )

    # Then only the others were paid for, and the skip is logged
    assert sent == ["p2", "p4"]
    assert result.credits == 2
    assert [r.get("email") for r in result.records] == [None, "p2@x.example", None, "p4@x.example"]
    assert "apollo.enrich_skipped_suppressed" in ctx.log.events()
