"""The LinkedIn connector against LinkedIn's documented responses (`fixtures/linkedin/`).

A fake LinkedIn built on `httpx.MockTransport` answers with the documented bodies; each test
says which documented field or behaviour it holds the connector to. The last tests check that
the sandbox emulator answers in the same shapes, so the emulator tests prove something too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.base import Page
from connectors.errors import AuthError, ConfigError
from connectors.kit.testing import LocalRunContext
from connectors.providers.linkedin.connector import (
    LinkedInConfig,
    LinkedInConnector,
    LinkedInParams,
)
from connectors.providers.linkedin.forms import form_id_of
from connectors.sandbox.linkedin import LinkedInEmulator
from runtime.settings import reset_settings_cache
from tests.connectors.shapes import shape

FIXTURES = Path(__file__).parent / "fixtures" / "linkedin"
TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"
NOW = 1_711_700_000.0  # pinned clock: 2024-03-29, just after the documented submissions


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.0/8")
    reset_settings_cache()
    yield
    reset_settings_cache()


class FakeLinkedIn:
    """Routes by path; each route answers with a documented body. Records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.valid_tokens = {"old-token"}
        self.responses: Any = fixture("lead_form_responses.json")
        self.forms: dict[str, Any] = {"5928001": fixture("lead_form.json")}
        self.refresh: Callable[[httpx.Request], httpx.Response] = self.good_refresh
        self.api_401 = fixture("error_401_invalid_access_token.json")

    def good_refresh(self, request: httpx.Request) -> httpx.Response:
        body = fixture("token_refresh.json")
        self.valid_tokens.add(body["access_token"])
        return httpx.Response(200, json=body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if str(request.url) == TOKEN_URL:
            return self.refresh(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            return httpx.Response(401, json=self.api_401)
        path = request.url.path
        if path == "/rest/leadFormResponses":
            return httpx.Response(200, json=self.responses)
        if path.startswith("/rest/leadForms/"):
            form = self.forms.get(path.rsplit("/", 1)[1])
            if form is None:
                return httpx.Response(404, json=fixture("error_404_lead_form.json"))
            return httpx.Response(200, json=form)
        return httpx.Response(404, json={"status": 404, "message": "no route"})

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def config(**overrides: Any) -> LinkedInConfig:
    values: dict[str, Any] = {"access_token": "old-token", "sponsored_account_id": "522529623"}
    return LinkedInConfig(**{**values, **overrides})


def refreshable(**overrides: Any) -> LinkedInConfig:
    return config(
        refresh_token="refresh-secret",
        client_id="app-id",
        client_secret="app-secret",
        **overrides,
    )


def run(fake: FakeLinkedIn, cfg: LinkedInConfig, ctx: LocalRunContext | None = None) -> list[Page]:
    connector = LinkedInConnector(clock=lambda: NOW, transport=httpx.MockTransport(fake))
    return list(connector.pages(cfg, LinkedInParams(), None, ctx or LocalRunContext()))


def test_answers_join_the_questions_of_get_lead_forms_by_question_id() -> None:
    # Given the documented list (no embedded form) and the documented form
    fake = FakeLinkedIn()
    pages = run(fake, config(test_leads="tag"))
    leads = [r for p in pages for r in p.records]
    # Then the questions come from GET /rest/leadForms/{id}, asked once for the three responses
    assert fake.paths().count("/rest/leadForms/5928001") == 1
    form_request = next(r for r in fake.requests if r.url.path.startswith("/rest/leadForms/"))
    assert form_request.headers["LinkedIn-Version"] == "202506"
    assert form_request.headers["X-Restli-Protocol-Version"] == "2.0.0"
    # And predefinedField maps each answer; the custom question stays in raw only
    ada = leads[0]
    assert (ada.first_name, ada.last_name, ada.email) == (
        "Ada",
        "Lovelace",
        "ada@analytical.example",
    )
    assert (ada.company_name, ada.title) == ("Analytical Engines Ltd", "Head of Research")
    assert ada.external_id == "aaaabbbb-0000-cccc-1111-dddd2222eeee-5"
    assert ada.raw is not None and ada.raw["formResponse"]["answers"][5]["questionId"] == 45
    # And testLead: true is kept tagged when asked, skipped by default
    assert [bool(r.raw and r.raw.get("test_lead")) for r in leads] == [False, False, True]
    assert len([r for p in run(FakeLinkedIn(), config()) for r in p.records]) == 2
    # And submittedAt is the incremental state; paging.total ends the run after one page
    assert pages[-1].sync_state == {"submitted_at_ms": 1711676391003}
    assert pages[-1].checkpoint["done"] is True and len(pages) == 1


def test_an_embedded_form_is_read_as_it_is() -> None:
    # Given the Postman example fetched with the form:(...) projection
    fake = FakeLinkedIn()
    fake.responses = fixture("lead_form_responses_projected.json")
    leads = [r for p in run(fake, config()) for r in p.records]
    # Then no form is fetched and the embedded questions map the answers
    assert not any(p.startswith("/rest/leadForms/") for p in fake.paths())
    assert [(r.first_name, r.last_name, r.email) for r in leads] == [
        ("Lucía", "García", "lucia.garcia@ejemplo.example")
    ]


def test_a_missing_form_is_a_row_error_for_its_responses_only() -> None:
    # Given two responses of the documented form and one of a form that answers 404
    fake = FakeLinkedIn()
    body = fixture("lead_form_responses.json")
    body["elements"][1]["versionedLeadGenFormUrn"] = (
        "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:5928002,3)"
    )
    fake.responses = body
    ctx = LocalRunContext()
    pages = run(fake, config(test_leads="tag"), ctx)
    # Then the job goes on: two leads, one row error naming the form
    assert [r.email for p in pages for r in p.records] == [
        "ada@analytical.example",
        "test.lead@linkedin.example",
    ]
    [error] = [e for p in pages for e in p.errors]
    assert (error.code, error.record) == ("form_not_found", 2)
    assert "5928002" in error.message and error.raw == "aaaabbbb-0000-cccc-1111-dddd2222ffff-5"
    assert "linkedin.form_not_found" in ctx.log.events("warning")


def test_unmapped_answers_and_an_unreadable_form_urn_are_row_errors_for_those_only() -> None:
    # Given the documented list where Charles answers only the custom question (45) and the
    # test lead's response names no lead form
    fake = FakeLinkedIn()
    body = fixture("lead_form_responses.json")
    charles, test_lead = body["elements"][1], body["elements"][2]
    charles["formResponse"]["answers"] = [
        {"answerDetails": {"textQuestionAnswer": {"answer": "Under 10k"}}, "questionId": 45}
    ]
    test_lead["versionedLeadGenFormUrn"] = "urn:li:sponsoredCampaign:273437326"
    fake.responses = body
    pages = run(fake, config(test_leads="tag"))
    # Then the job goes on with Ada, and each of the other two is a row error of its own
    assert [r.email for p in pages for r in p.records] == ["ada@analytical.example"]
    errors = [(e.code, e.record, e.raw) for p in pages for e in p.errors]
    assert errors == [
        ("no_answers", 2, "aaaabbbb-0000-cccc-1111-dddd2222ffff-5"),
        ("form_unknown", 3, "aaaabbbb-0000-cccc-1111-dddd22220000-5"),
    ]
    # And only the readable form was fetched
    assert [p for p in fake.paths() if p.startswith("/rest/leadForms/")] == [
        "/rest/leadForms/5928001"
    ]


def test_question_ids_join_whether_numbers_or_strings() -> None:
    # The documentation types questionId as a number; a string id must join all the same
    fake = FakeLinkedIn()
    body = fixture("lead_form_responses.json")
    for answer in body["elements"][0]["formResponse"]["answers"]:
        answer["questionId"] = str(answer["questionId"])
    fake.responses = body
    leads = [r for p in run(fake, config()) for r in p.records]
    assert leads[0].email == "ada@analytical.example" and leads[0].title == "Head of Research"


def test_form_urns_are_read_with_and_without_version() -> None:
    versioned = {"versionedLeadGenFormUrn": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:77,2)"}
    assert form_id_of(versioned) == "77"
    assert form_id_of({"versionedLeadGenFormUrn": "urn:li:leadGenForm:78"}) == "78"
    assert form_id_of({"versionedLeadGenFormUrn": "urn:li:organization:1"}) is None
    assert form_id_of({}) is None


@pytest.mark.parametrize(
    "body", ["error_401_invalid_access_token.json", "error_401_empty_token.json"]
)
def test_401_without_a_refresh_token_fails_with_a_readable_error(body: str) -> None:
    # Given either documented 401 body (one without a `code` member)
    fake = FakeLinkedIn()
    fake.api_401 = fixture(body)
    with pytest.raises(AuthError) as info:
        run(fake, config(access_token="expired-token"))
    # Then the job fails saying what to do, and the token is not in the message
    assert "authorise Dashin again" in str(info.value) and "401" in str(info.value)
    assert "expired-token" not in str(info.value)
    assert TOKEN_URL not in [str(r.url) for r in fake.requests]


def test_401_refreshes_the_token_retries_and_saves_it() -> None:
    # Given an access token LinkedIn no longer accepts and a refresh token
    fake = FakeLinkedIn()
    fake.valid_tokens = set()
    ctx = LocalRunContext()
    leads = [r for p in run(fake, refreshable(), ctx) for r in p.records]
    # Then the token endpoint is asked once, with the documented form parameters
    [refresh] = [r for r in fake.requests if str(r.url) == TOKEN_URL]
    assert refresh.method == "POST"
    assert refresh.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert {k: v[0] for k, v in parse_qs(refresh.content.decode()).items()} == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-secret",
        "client_id": "app-id",
        "client_secret": "app-secret",
    }
    # And the request is sent again with the new token and succeeds
    assert len(leads) == 2
    assert fake.requests[-1].headers["Authorization"] == "Bearer BBBB2nRhbjQ..."
    # And the new token with its expiry (expires_in, refresh_token_expires_in) is saved
    [saved] = ctx.saved_config
    assert saved == {
        "access_token": "BBBB2nRhbjQ...",
        "access_token_expires_at": int(NOW) + 5_184_000,
        "refresh_token": "AQWAft_WjYZ...",
        "refresh_token_expires_at": int(NOW) + 525_600,
    }
    # And no token or secret reached a log line
    logged = json.dumps(ctx.log.lines, default=str)
    assert "linkedin.token_refreshed" in logged
    for secret in ("BBBB2nRhbjQ", "AQWAft_WjYZ", "refresh-secret", "app-secret", "old-token"):
        assert secret not in logged


def test_a_token_close_to_its_expiry_is_refreshed_before_the_first_call() -> None:
    fake = FakeLinkedIn()
    ctx = LocalRunContext()
    run(fake, refreshable(access_token_expires_at=int(NOW) + 3600), ctx)
    assert str(fake.requests[0].url) == TOKEN_URL
    assert all(r.headers["Authorization"] == "Bearer BBBB2nRhbjQ..." for r in fake.requests[1:])
    assert len(ctx.saved_config) == 1
    # A token with weeks left is left alone
    calm = FakeLinkedIn()
    run(calm, refreshable(access_token_expires_at=int(NOW) + 30 * 86_400))
    assert TOKEN_URL not in [str(r.url) for r in calm.requests]


def test_a_revoked_refresh_token_fails_the_job_readably() -> None:
    fake = FakeLinkedIn()
    fake.valid_tokens = set()
    revoked = fixture("token_refresh_revoked.json")
    fake.refresh = lambda request: httpx.Response(400, json=revoked)
    ctx = LocalRunContext()
    with pytest.raises(AuthError, match="refused to refresh the access token") as info:
        run(fake, refreshable(), ctx)
    assert "invalid_request" in str(info.value) and "authorise Dashin again" in str(info.value)
    assert "refresh-secret" not in str(info.value) and ctx.saved_config == []


def test_an_expired_refresh_token_is_not_even_sent() -> None:
    fake = FakeLinkedIn()
    fake.valid_tokens = set()
    with pytest.raises(AuthError, match="refresh token expired on 2024-03-2"):
        run(fake, refreshable(refresh_token_expires_at=int(NOW) - 86_400))
    assert TOKEN_URL not in [str(r.url) for r in fake.requests]


def test_426_nonexistent_version_is_a_config_error() -> None:
    body = fixture("error_426_nonexistent_version.json")
    transport = httpx.MockTransport(lambda request: httpx.Response(426, json=body))
    connector = LinkedInConnector(clock=lambda: NOW, transport=transport)
    with pytest.raises(ConfigError, match="not an active API version"):
        list(connector.pages(config(), LinkedInParams(), None, LocalRunContext()))


# -- the emulator answers in the documented shapes ----------------------------------------------


def refresh_at(emu: LinkedInEmulator) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": emu.refresh_token,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
    }
    return httpx.post(f"{emu.url}/oauth/v2/accessToken", data=form)


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 3}], indirect=True)
def test_emulator_answers_in_the_documented_shapes(linkedin_emulator: LinkedInEmulator) -> None:
    emu = linkedin_emulator
    headers = {
        "Authorization": "Bearer linkedin-test-token",
        "LinkedIn-Version": "202506",
        "X-Restli-Protocol-Version": "2.0.0",
    }
    query = "q=owner&owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A123)"
    query += "&leadType=(leadType:SPONSORED)"
    listing = httpx.get(f"{emu.url}/rest/leadFormResponses?{query}", headers=headers).json()
    documented = fixture("lead_form_responses.json")
    element, doc_element = listing["elements"][0], documented["elements"][0]
    assert "form" not in element
    doc_element["formResponse"]["consentResponses"] = []
    assert shape(listing["paging"]) == shape(documented["paging"])
    assert shape(element) == shape(doc_element)
    form_id = form_id_of(element)
    form = httpx.get(f"{emu.url}/rest/leadForms/{form_id}", headers=headers).json()
    doc_form = fixture("lead_form.json")
    assert set(form) <= set(doc_form) and set(form["content"]) <= set(doc_form["content"])
    assert shape(form["content"]["questions"][0]) == shape(doc_form["content"]["questions"][0])
    missing = httpx.get(f"{emu.url}/rest/leadForms/999", headers=headers)
    assert missing.status_code == 404
    assert set(missing.json()) == set(fixture("error_404_lead_form.json"))
    refreshed = refresh_at(emu)
    assert shape(refreshed.json()) == shape(fixture("token_refresh.json"))
    emu.revoke_refresh_token()
    refused = refresh_at(emu)
    assert refused.status_code == 400 and refused.json() == fixture("token_refresh_revoked.json")
    bad_token = {**headers, "Authorization": "Bearer x"}
    bad = httpx.get(f"{emu.url}/rest/leadForms/{form_id}", headers=bad_token)
    assert bad.json() == fixture("error_401_invalid_access_token.json")
