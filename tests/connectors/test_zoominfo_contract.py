"""ZoomInfo contract tests: the connector against ZoomInfo's documented example answers, replayed
through `httpx.MockTransport` from `fixtures/zoominfo/`, and the sandbox emulator held to the
same shapes. An emulator written from the connector's own assumptions proves nothing: these
fixtures come from the documentation (see `fixtures/zoominfo/README.md`).

ZoomInfo's count fields can be read two ways; the documented reading is `maxResults` = matches,
`totalResults` = records on this page. Both readings must yield every contact.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from connectors.base import Page
from connectors.errors import ConfigError
from connectors.kit.testing import LocalRunContext
from connectors.providers.zoominfo.connector import (
    ZoomInfoConfig,
    ZoomInfoConnector,
    ZoomInfoParams,
    to_lead,
)
from connectors.providers.zoominfo.counts import read_counts
from connectors.sandbox.zoominfo import ZoomInfoEmulator
from tests.connectors.shapes import shape

FIXTURES = Path(__file__).parent / "fixtures" / "zoominfo"
Shape = Literal["documented", "swapped", "rpp_echo", "nonsense"]


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


SEARCH = fixture("search_contact.json")
ENRICH = fixture("enrich_contact.json")
AUTH = fixture("authenticate.json")


@pytest.fixture(autouse=True)
def isolated(zoominfo_isolated: None) -> None:
    """A token cache of the test's own (every config below also has a user of its own)."""


def config(**overrides: Any) -> ZoomInfoConfig:
    values: dict[str, Any] = {
        "base_url": "https://api.zoominfo.example",
        "username": f"user-{uuid.uuid4().hex[:8]}",
        "password": "password",
    }
    return ZoomInfoConfig(**(values | overrides))


def answer(status: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


class DocumentedZoomInfo:
    """A ZoomInfo made of the documented examples: `matches` contacts shaped like the search
    example's, paged as documented, enriched with the enrich example's record."""

    def __init__(self, matches: int, shape: Shape = "documented") -> None:
        self.matches = matches
        self.shape = shape
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.errors: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.without_email: set[int] = set()  # contacts whose search result says hasEmail false

    def contact(self, n: int) -> dict[str, Any]:
        contact: dict[str, Any] = copy.deepcopy(SEARCH["data"][n % len(SEARCH["data"])])
        contact["id"] = 2_000_000_000 + n
        contact["hasEmail"] = n not in self.without_email
        return contact

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content or b"{}")
        self.calls.append((path, body))
        if self.errors.get(path):
            status, error = self.errors[path].pop(0)
            return answer(status, error, **{"Retry-After": "0"} if status == 429 else {})
        if path == "/authenticate":
            return answer(200, AUTH)
        if path == "/enrich/contact":
            return answer(200, self.enriched(body["matchPersonInput"]))
        return answer(200, self.page(int(body["page"]), int(body["rpp"])))

    def page(self, page: int, rpp: int) -> dict[str, Any]:
        data = [self.contact(n) for n in range((page - 1) * rpp, min(page * rpp, self.matches))]
        counts = {
            "documented": (self.matches, len(data)),
            "swapped": (len(data), self.matches),
            "rpp_echo": (rpp, self.matches),  # maxResults read as the page size asked for
            "nonsense": (7, 3),
        }[self.shape]
        return {"maxResults": counts[0], "totalResults": counts[1], "currentPage": page} | {
            "data": data
        }

    def enriched(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        doc = copy.deepcopy(ENRICH)
        template = doc["data"]["result"][0]
        result = []
        for item in inputs:
            one = copy.deepcopy(template)
            one["input"] = {k.lower(): v for k, v in item.items()}  # echoed as documented
            one["data"][0]["id"] = item["personId"]
            result.append(one)
        doc["data"]["result"] = result
        return doc

    def searches(self) -> int:
        return sum(1 for path, _ in self.calls if path == "/search/contact")


def run(
    provider: Callable[[httpx.Request], httpx.Response],
    params: ZoomInfoParams,
    cfg: ZoomInfoConfig | None = None,
    ctx: LocalRunContext | None = None,
) -> list[Page]:
    connector = ZoomInfoConnector(transport=httpx.MockTransport(provider))
    return list(connector.pages(cfg or config(), params, None, ctx or LocalRunContext()))


def ids(pages: list[Page]) -> list[str]:
    return [str(r.external_id) for p in pages for r in p.records]


# -- the documented search example --------------------------------------------------------------
def test_the_documented_search_example_counts_30579_matches() -> None:
    # Given the documented answer: 30579 matches, 10 records on this page
    counts = read_counts(SEARCH, len(SEARCH["data"]), page=1, rpp=10)
    assert (counts.matches, counts.reading) == (30579, "documented")

    # and "test connection" answered with it reports the match count, not the page's
    def documented(request: httpx.Request) -> httpx.Response:
        return answer(200, AUTH if request.url.path == "/authenticate" else SEARCH)

    result = ZoomInfoConnector(transport=httpx.MockTransport(documented)).check(config())
    assert result.ok and result.message.startswith("30579 contacts")
    assert result.sample[0].first_name == SEARCH["data"][0]["firstName"]


@pytest.mark.parametrize(
    ("most", "total", "records", "page", "rpp", "expected"),
    [
        (30579, 10, 10, 1, 10, (30579, "documented")),  # the documented example
        (10, 30579, 10, 1, 10, (30579, "swapped")),  # counts swapped
        (100, 250, 50, 3, 100, (250, "swapped")),  # maxResults echoing rpp, last page
        (250, 50, 50, 3, 100, (250, "documented")),  # documented, last page
        (100, 50, 50, 1, 100, (50, "swapped")),  # rpp echo, one short page
        (250, 0, 0, 3, 100, (250, "pages")),  # an empty page after 200: 250 cannot be
        (900, 5, 5, 3, 50, (900, "pages")),  # a truncated page: asked again, not believed
        (7, 3, 100, 2, 100, (200, "pages")),  # nonsense: the pages say at least 200
    ],
)
def test_both_readings_are_accepted_and_the_page_decides(
    most: int, total: int, records: int, page: int, rpp: int, expected: tuple[int, str]
) -> None:
    body = {"maxResults": most, "totalResults": total}
    counts = read_counts(body, records, page=page, rpp=rpp)
    assert (counts.matches, counts.reading) == expected


@pytest.mark.parametrize("shape", ["documented", "swapped", "rpp_echo"])
def test_every_contact_arrives_whichever_reading_the_counts_follow(shape: Shape) -> None:
    # Given 250 matches answered 100 a page, the counts in either reading
    provider = DocumentedZoomInfo(250, shape)
    ctx = LocalRunContext()
    got = ids(run(provider, ZoomInfoParams(rpp=100), ctx=ctx))
    # Then all 250 arrive, in three searches (the short third page ends it), without warnings
    assert len(got) == len(set(got)) == 250
    assert provider.searches() == 3
    assert "zoominfo.counts_disagree" not in ctx.log.events()


def test_a_full_last_page_is_followed_by_one_more_search_not_a_count() -> None:
    # Given exactly 200 matches: the second page is full
    provider = DocumentedZoomInfo(200)
    got = ids(run(provider, ZoomInfoParams(rpp=100)))
    # Then the empty third page, not the count, ends the search
    assert len(set(got)) == 200 and provider.searches() == 3


def test_counts_that_fit_no_reading_are_warned_once_and_the_pages_are_trusted() -> None:
    # Given counts that agree with nothing the pages hold (7 and 3 on every page)
    provider = DocumentedZoomInfo(250, "nonsense")
    ctx = LocalRunContext()
    got = ids(run(provider, ZoomInfoParams(rpp=100), ctx=ctx))
    # Then every contact still arrives and the job carries exactly one warning about it
    assert len(set(got)) == 250
    assert ctx.log.events("warning").count("zoominfo.counts_disagree") == 1


# -- the documented enrich example ----------------------------------------------------------------
def test_the_documented_enrich_answer_fills_the_lead() -> None:
    # Given one contact, enriched by the documented answer (input echoed with lower-cased keys,
    # company fields inside `company`)
    provider = DocumentedZoomInfo(1)
    pages = run(provider, ZoomInfoParams(rpp=10), cfg=config(enrich=True))
    lead = pages[0].records[0]
    doc = ENRICH["data"]["result"][0]["data"][0]
    assert lead.email == doc["email"] and lead.phone is not None
    assert (lead.first_name, lead.last_name) == (doc["firstName"], doc["lastName"])
    assert lead.company_domain == "example.com"  # company.website "www.example.com"
    assert lead.company_size == str(doc["company"]["employeeCount"])
    assert lead.company_industry == doc["company"]["primaryIndustry"][0]
    assert lead.linkedin_url is not None and "ada-archer-example" in lead.linkedin_url
    assert (lead.city, lead.state, lead.country) == (doc["city"], doc["state"], doc["country"])
    assert pages[0].credits_used == 1
    enrich_body = next(b for path, b in provider.calls if path == "/enrich/contact")
    assert enrich_body["matchPersonInput"] == [{"personId": 2_000_000_000}]
    assert "companyPrimaryIndustry" in enrich_body["outputFields"]


def documented_contact_without_industry() -> dict[str, Any]:
    """The documented enriched contact with its `company.primaryIndustry` taken out."""
    contact: dict[str, Any] = copy.deepcopy(ENRICH["data"]["result"][0]["data"][0])
    del contact["company"]["primaryIndustry"]
    return contact


@pytest.mark.parametrize(
    "where",
    [
        "nested",  # the documented example: `company.primaryIndustry`, a list
        "flat",  # the documented output field name `companyPrimaryIndustry`, a list
        "flat_text",  # the same output field as a plain string
    ],
)
def test_the_primary_industry_is_read_nested_or_under_its_output_field_name(where: str) -> None:
    contact = documented_contact_without_industry()
    if where == "nested":
        contact["company"]["primaryIndustry"] = ["Software", "Media & Internet"]
    elif where == "flat":
        contact["companyPrimaryIndustry"] = ["Software", "Media & Internet"]
    else:
        contact["companyPrimaryIndustry"] = "Software"
    assert to_lead(contact).company_industry == "Software"


def test_an_undocumented_flat_company_industry_is_not_read() -> None:
    # `companyIndustry` is no ZoomInfo output field (only `companyPrimaryIndustry` and
    # `companyIndustries` are): a contact carrying only it has no industry
    contact = documented_contact_without_industry()
    contact["companyIndustry"] = "Software"
    assert to_lead(contact).company_industry is None


def test_a_contact_whose_search_result_has_no_email_is_not_paid_for() -> None:
    # Given three contacts, the second one's search result saying `hasEmail: false`
    provider = DocumentedZoomInfo(3)
    provider.without_email = {1}
    pages = run(provider, ZoomInfoParams(rpp=10), cfg=config(enrich=True))
    # Then only the other two are sent to the paid enrich call, and all three become leads
    sent = [b["matchPersonInput"] for path, b in provider.calls if path == "/enrich/contact"]
    assert sent == [[{"personId": 2_000_000_000}, {"personId": 2_000_000_002}]]
    assert len(pages[0].records) == 3 and pages[0].credits_used == 2
    assert [r.email is not None for r in pages[0].records] == [True, False, True]


# -- the documented errors -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "error", "reason"),
    [
        ("/authenticate", "error_401.json", "bad_credentials"),
        ("/search/contact", "error_403.json", "forbidden"),
        ("/search/contact", "error_400_rpp.json", "bad_config"),
    ],
)
def test_documented_errors_tell_check_failures_apart(path: str, error: str, reason: str) -> None:
    provider = DocumentedZoomInfo(5)
    body = fixture(error)
    provider.errors[path] = [(body["statusCode"], body)] * 3
    result = ZoomInfoConnector(transport=httpx.MockTransport(provider)).check(config())
    assert not result.ok and result.reason == reason


def test_a_used_up_record_limit_stops_enriching_and_keeps_the_leads() -> None:
    # Given enrich answering 403 (record limit used up) from its first call
    provider = DocumentedZoomInfo(150)
    provider.errors["/enrich/contact"] = [(403, fixture("error_403_record_limit.json"))]
    ctx = LocalRunContext()
    pages = run(provider, ZoomInfoParams(rpp=100), cfg=config(enrich=True), ctx=ctx)
    # Then every contact is a lead, none with an email, and enrich was asked only once
    assert len({r.external_id for p in pages for r in p.records}) == 150
    assert not any(r.email for p in pages for r in p.records)
    assert sum(1 for path, _ in provider.calls if path == "/enrich/contact") == 1
    assert ctx.log.events("warning").count("zoominfo.enrich_refused") == 1


def test_an_expired_jwt_mid_job_is_renewed_once_and_paging_goes_on() -> None:
    # Given a search answered 401 "Authentication failed" once (an expired JWT)
    provider = DocumentedZoomInfo(150)
    provider.errors["/search/contact"] = [(401, fixture("error_401.json"))]
    ctx = LocalRunContext()
    got = ids(run(provider, ZoomInfoParams(rpp=100), ctx=ctx))
    assert len(set(got)) == 150
    assert sum(1 for path, _ in provider.calls if path == "/authenticate") == 2
    assert ctx.log.events().count("zoominfo.token_renewed") == 1


def test_a_429_is_waited_out_and_paging_past_the_window_is_a_config_error() -> None:
    provider = DocumentedZoomInfo(150)
    provider.errors["/search/contact"] = [(429, fixture("error_429.json"))]
    assert len(set(ids(run(provider, ZoomInfoParams(rpp=100))))) == 150
    # a 400 for paging past 1,000 records (the window) fails the job as a configuration error
    provider.errors["/search/contact"] = [(400, fixture("error_400_pagination.json"))]
    with pytest.raises(ConfigError, match="Pagination"):
        run(provider, ZoomInfoParams(rpp=100))


# -- the emulator answers in the documented shapes -----------------------------------------------
def post(emu: ZoomInfoEmulator, path: str, body: dict[str, Any], token: str) -> httpx.Response:
    return httpx.post(f"{emu.url}{path}", json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 250}], indirect=True)
def test_the_emulator_answers_searches_as_documented(zoominfo_emulator: ZoomInfoEmulator) -> None:
    emu = zoominfo_emulator
    creds = {"username": "zoominfo-user", "password": "zoominfo-pass"}
    auth = httpx.post(f"{emu.url}/authenticate", json=creds)
    assert auth.status_code == 200 and set(auth.json()) == set(AUTH)
    token = auth.json()["jwt"]
    first = post(emu, "/search/contact", {"rpp": 10, "page": 1}, token).json()
    last = post(emu, "/search/contact", {"rpp": 100, "page": 3}, token).json()
    # the documented reading: maxResults = matches, totalResults = records on this page
    assert (first["maxResults"], first["totalResults"], first["currentPage"]) == (250, 10, 1)
    assert (last["maxResults"], last["totalResults"], len(last["data"])) == (250, 50, 50)
    # the same keys, order and types as the documented example, down to each contact
    assert list(first) == list(SEARCH)
    assert [list(c) for c in first["data"][:1]] == [list(SEARCH["data"][0])]
    assert shape(first) == shape(SEARCH)
    for name in ("error_400_rpp.json", "error_400_pagination.json"):
        body = {"rpp": 101} if "rpp" in name else {"rpp": 100, "page": 11}
        error = post(emu, "/search/contact", body, token)
        assert error.status_code == 400 and shape(error.json()) == shape(fixture(name))
    expired = post(emu, "/search/contact", {"rpp": 1}, token + "x")
    assert (expired.status_code, expired.json()) == (401, fixture("error_401.json"))


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 50}], indirect=True)
def test_the_emulator_enriches_as_documented(zoominfo_emulator: ZoomInfoEmulator) -> None:
    emu = zoominfo_emulator
    token = emu.issue_token()
    person = post(emu, "/search/contact", {"rpp": 1}, token).json()["data"][0]["id"]
    fields = ["id", "firstName", "email", "companyName", "companyWebsite", "companyEmployeeCount"]
    body = {"matchPersonInput": [{"personId": person}], "outputFields": fields}
    doc = ENRICH["data"]
    got = post(emu, "/enrich/contact", body, token).json()
    assert got["success"] is True and set(got["data"]) == set(doc)
    assert got["data"]["outputFields"] == [[f.lower() for f in fields]]
    result = got["data"]["result"][0]
    assert set(doc["result"][0]) <= set(result)  # input and data (the emulator adds matchStatus)
    assert result["input"] == {"personid": person}  # echoed with lower-cased keys
    record = result["data"][0]
    assert set(record) == {"id", "firstName", "email", "company"}
    assert set(record["company"]) == {"name", "website", "employeeCount"}
    documented = doc["result"][0]["data"][0]
    for key in ("id", "firstName", "email"):
        assert type(record[key]) is type(documented[key])
    for key in ("name", "website", "employeeCount"):
        assert type(record["company"][key]) is type(documented["company"][key])
    refused = post(emu, "/enrich/contact", {**body, "outputFields": ["companyIndustry"]}, token)
    assert refused.status_code == 400  # not a documented output field
