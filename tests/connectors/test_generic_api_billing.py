"""A generic API marked billable (issue 19): each page carries what its answers cost, a job stops
at its credit budget before a request it cannot afford, and a resume pays for no page twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from connectors.base import Page
from connectors.errors import BudgetExhausted
from connectors.kit.testing import LocalRunContext
from connectors.providers.generic_api.connector import (
    GenericApiConfig,
    GenericApiConnector,
    GenericApiParams,
)
from connectors.sandbox.generic import GenericEmulator
from tests.connectors.test_generic_api import allow_loopback as allow_loopback
from tests.connectors.test_generic_api import config_for, expected_ids, ids, run

PAGE_OF_10 = {"type": "page", "page_param": "page", "size_param": "size", "page_size": 10}


def run_lazily(
    config: GenericApiConfig, checkpoint: dict[str, Any] | None, ctx: LocalRunContext
) -> Iterator[Page]:
    """Pages as the runner takes them, one at a time (an error comes after the pages before)."""
    return GenericApiConnector().pages(config, GenericApiParams(), checkpoint, ctx)


def _served_pages(emu: GenericEmulator) -> list[str]:
    return [r.query for r in emu.stats.requests_to(emu.path)]


@pytest.mark.parametrize("generic_emulator", [{"records": 60}], indirect=True)
def test_per_record_credits_stop_at_the_budget_and_a_resume_pays_no_page_twice(
    generic_emulator: GenericEmulator,
) -> None:
    emu = generic_emulator
    config = config_for(emu, pagination=PAGE_OF_10, billing={"credits_per_record": 1})
    # Given a job allowed 25 credits, on an API charging one credit per record
    ctx = LocalRunContext(credit_budget=25)
    pages = []
    # When it runs: pages of 10 while a request is affordable, then the budget stops it
    with pytest.raises(BudgetExhausted, match="budget of 25 is spent"):
        for page in run_lazily(config, None, ctx):
            pages.append(page)
    # Then three pages were read (the third known to cost 10 only once answered) and booked
    assert [p.credits_used for p in pages] == [10, 10, 10]
    assert pages[-1].checkpoint is not None and pages[-1].checkpoint["credits"] == 30
    assert [e for _, e, _ in ctx.log.lines][-1] == "generic_api.budget_exhausted"
    assert len(_served_pages(emu)) == 3
    # When the budget is raised and the job resumes from its checkpoint
    rest = run(config, pages[-1].checkpoint, LocalRunContext(credit_budget=1000))
    # Then it reads the other 30 records, each page asked for once, and books only those
    assert ids(pages) + ids(rest) == expected_ids(60)
    assert sum(p.credits_used for p in rest) == 30
    assert len(_served_pages(emu)) == len(set(_served_pages(emu)))


@pytest.mark.parametrize("generic_emulator", [{"records": 30}], indirect=True)
def test_per_request_credits_without_a_budget(generic_emulator: GenericEmulator) -> None:
    config = config_for(generic_emulator, pagination=PAGE_OF_10, billing={"credits_per_request": 2})
    pages = run(config)
    assert ids(pages) == expected_ids(30)
    assert sum(p.credits_used for p in pages) == 2 * len(_served_pages(generic_emulator))


def test_what_the_answer_says_it_charged_wins_over_the_price() -> None:
    bodies = [
        {"items": [{"id": "a", "email": "a@x.example"}], "meta": {"charged": 7}},
        {"items": [{"id": "b", "email": "b@x.example"}], "meta": {}},  # says nothing: the price
        {"items": [], "meta": {"charged": 0}},  # the end, free of charge
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(bodies.pop(0)).encode())

    config = GenericApiConfig(
        url="https://api.example.com/v1/people",
        records_path="items",
        field_map={"email": "email"},
        pagination={"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 1},
        billing={"credits_per_request": 1, "credits_per_record": 2, "credits_path": "meta.charged"},
    )
    pages = run(config, transport=httpx.MockTransport(answer))
    assert [p.credits_used for p in pages] == [7, 3, 0]


def test_billing_must_charge_something_and_name_a_readable_path() -> None:
    base = {"url": "https://api.example.com/v1/people"}
    with pytest.raises(ValidationError, match="credits_per_request, credits_per_record"):
        GenericApiConfig(**base, billing={})
    with pytest.raises(ValidationError, match="credits_path"):
        GenericApiConfig(**base, billing={"credits_path": "meta..charged"})
    with pytest.raises(ValidationError, match="credits_per_record"):
        GenericApiConfig(**base, billing={"credits_per_record": -1})
