"""LinkedIn Lead Sync connector against the Lead Sync emulator over real HTTP.

The emulator parses Rest.li 2.0 strictly, so a wrongly encoded query is a 400, not a silent pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.base import Page
from connectors.errors import AuthError, ConfigError, ForbiddenError, RateLimited, TransientError
from connectors.kit.testing import LocalRunContext
from connectors.providers.linkedin.connector import (
    LinkedInConfig,
    LinkedInConnector,
    LinkedInParams,
    lead_from_element,
    restli_query,
    seconds_until_utc_midnight,
)
from connectors.sandbox.linkedin import LinkedInEmulator
from records import LeadRecord
from runtime.settings import reset_settings_cache

TOKEN = "linkedin-test-token"


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.0/8")
    monkeypatch.setenv("DASHIN_RATE_LIMIT_PARK_S", "120")
    reset_settings_cache()
    yield
    reset_settings_cache()


def config_for(emu: LinkedInEmulator, **overrides: Any) -> LinkedInConfig:
    values: dict[str, Any] = {
        "access_token": TOKEN,
        "sponsored_account_id": "123",
        "base_url": emu.url,
        "page_size": 100,
    }
    return LinkedInConfig(**{**values, **overrides})


class InstantWaits(LocalRunContext):
    """Retry and throttle waits are recorded, not slept: the backoff is asserted, not endured."""

    def wait(self, seconds: float) -> None:
        self.waited_s += max(0.0, seconds)


def run(
    config: LinkedInConfig,
    checkpoint: dict[str, Any] | None = None,
    ctx: LocalRunContext | None = None,
    params: LinkedInParams | None = None,
) -> list[Page]:
    ctx = ctx or LocalRunContext()
    return list(LinkedInConnector().pages(config, params or LinkedInParams(), checkpoint, ctx))


def records(pages: list[Page]) -> list[LeadRecord]:
    return [r for p in pages for r in p.records]


def ids(pages: list[Page]) -> list[str | None]:
    return [r.external_id for r in records(pages)]


def test_restli_query_keeps_syntax_and_encodes_urns() -> None:
    config = LinkedInConfig(access_token="t", sponsored_account_id="123")
    query = restli_query(config, 1000, 2000, 20, 10)
    assert query == (
        "q=owner&owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A123)"
        "&leadType=(leadType:SPONSORED)&submittedAtTimeRange=(start:1000,end:2000)"
        "&start=20&count=10"
    )
    org = LinkedInConfig(access_token="t", owner_urn="urn:li:organization:77")
    assert "owner=(organization:urn%3Ali%3Aorganization%3A77)" in restli_query(org, 0, 1, 0, 1)


def test_config_needs_exactly_one_owner() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        LinkedInConfig(access_token="t")
    with pytest.raises(ValueError, match="exactly one"):
        LinkedInConfig(
            access_token="t", sponsored_account_id="1", owner_urn="urn:li:organization:1"
        )
    with pytest.raises(ValueError, match="urn:li"):
        LinkedInConfig(access_token="t", owner_urn="organization 1")


def test_answers_join_questions_by_id_and_map_predefined_fields() -> None:
    element = {
        "id": "lead-1",
        "submittedAt": 5,
        "testLead": True,
        "formResponse": {
            "answers": [
                {"questionId": 9, "answerDetails": {"textQuestionAnswer": {"answer": "CTO"}}},
                {"questionId": 3, "answerDetails": {"textQuestionAnswer": {"answer": " A@B.com "}}},
                {
                    "questionId": 4,
                    "answerDetails": {"textQuestionAnswer": {"answer": "big budget"}},
                },
            ]
        },
        "form": {
            "content": {
                "questions": [
                    {"questionId": 3, "name": "email", "predefinedField": "EMAIL"},
                    {"questionId": 9, "name": "title", "predefinedField": "JOB_TITLE"},
                    {"questionId": 4, "name": "budget"},
                ]
            }
        },
    }
    lead = lead_from_element(element, tag_test=True)
    assert lead is not None
    assert (lead.email, lead.title, lead.external_id) == ("a@b.com", "CTO", "lead-1")
    assert lead.raw is not None and lead.raw["test_lead"] is True
    untagged = lead_from_element(element, tag_test=False)
    assert untagged is not None and untagged.raw is not None and "test_lead" not in untagged.raw
    assert lead_from_element({**element, "formResponse": {"answers": []}}, tag_test=False) is None


def test_seconds_until_utc_midnight() -> None:
    assert seconds_until_utc_midnight(datetime(2025, 3, 1, 23, 59, 30, tzinfo=UTC)) == 30.0
    assert seconds_until_utc_midnight(datetime(2025, 3, 1, 0, 0, tzinfo=UTC)) == 86400.0


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 250}], indirect=True)
def test_full_run_returns_every_lead_normalised(linkedin_emulator: LinkedInEmulator) -> None:
    # Given 250 leads, when a first job back-fills with pages of 100
    ctx = LocalRunContext()
    pages = run(config_for(linkedin_emulator), ctx=ctx)
    # Then every lead arrives once, mapped from the form's predefined fields
    assert [len(p.records) for p in pages] == [100, 100, 50]
    assert len(set(ids(pages))) == 250
    first = records(pages)[0]
    person = linkedin_emulator.dataset.person(0)
    assert (first.first_name, first.last_name) == (person.first_name, person.last_name)
    assert first.email == person.email.lower()
    assert (first.company_name, first.title) == (person.company.name, person.title.title)
    assert first.country == person.location.country and first.phone == person.phone
    assert pages[-1].checkpoint["done"] is True
    assert pages[-1].progress is not None and pages[-1].progress.total == 250
    # And the sync state is the newest submittedAt seen
    newest = max(r.raw["submittedAt"] for r in records(pages) if r.raw)
    assert pages[-1].sync_state == {"submitted_at_ms": newest}


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 30}], indirect=True)
def test_raw_query_is_restli_2(linkedin_emulator: LinkedInEmulator) -> None:
    pages = run(config_for(linkedin_emulator, page_size=20))
    queries = [r.query for r in linkedin_emulator.stats.requests_to("/rest/leadFormResponses")]
    assert len(queries) == 2
    start, end = (
        pages[0].checkpoint["window"][1] - 365 * 86_400_000,
        pages[0].checkpoint["window"][1],
    )
    owner = "q=owner&owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A123)"
    assert queries[0] == (
        f"{owner}&leadType=(leadType:SPONSORED)"
        f"&submittedAtTimeRange=(start:{start},end:{end})&start=0&count=20"
    )
    # The second page starts at the newest submittedAt of the first, past the one lead read there
    newest = pages[0].records[-1].raw["submittedAt"]  # type: ignore[index]
    assert queries[1] == (
        f"{owner}&leadType=(leadType:SPONSORED)"
        f"&submittedAtTimeRange=(start:{newest},end:{end})&start=1&count=20"
    )


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 95}], indirect=True)
def test_resume_from_every_checkpoint_gives_exactly_the_rest(
    linkedin_emulator: LinkedInEmulator,
) -> None:
    config = config_for(linkedin_emulator, page_size=10)
    full = run(config)
    assert len(full) == 10 and len(set(ids(full))) == 95
    for k, page in enumerate(full):
        rest = run(config, checkpoint=page.checkpoint)
        assert ids(rest) == ids(full[k + 1 :]), f"resume after page {k}"


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 100}], indirect=True)
def test_resume_after_old_leads_expired_skips_nothing(linkedin_emulator: LinkedInEmulator) -> None:
    # Given a back-fill of 100 leads (one every 3 days) interrupted after 2 pages of 10
    emu = linkedin_emulator
    config = config_for(emu, page_size=10)
    full = ids(run(config))
    connector = LinkedInConnector(clock=lambda: emu.clock.wall())
    first = []
    for page in connector.pages(config, LinkedInParams(), None, LocalRunContext()):
        first.append(page)
        if len(first) == 2:
            break
    # When 95 days pass before it resumes, so the 10 oldest leads (already read) expire
    emu.clock.advance(95 * 86400)
    rest = list(connector.pages(config, LinkedInParams(), first[-1].checkpoint, LocalRunContext()))
    # Then the resumed job yields exactly the leads after the checkpoint: none skipped
    assert ids(rest) == full[20:]
    assert ids(first) + ids(rest) == full


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 40}], indirect=True)
def test_incremental_sync_fetches_only_new_leads(linkedin_emulator: LinkedInEmulator) -> None:
    config = config_for(linkedin_emulator)
    first = run(config)
    state = first[-1].sync_state
    assert state is not None and len(ids(first)) == 40
    # When three leads arrive (submitted a little before the next run starts)
    added = linkedin_emulator.add_leads(3, at_ms=linkedin_emulator.now_ms() - 10_000)
    second = run(config, ctx=LocalRunContext(sync_state=state))
    # Then the next job fetches only them, and the state moves to the newest
    assert len(ids(second)) == 3 and not set(ids(second)) & set(ids(first))
    assert second[-1].sync_state == {"submitted_at_ms": max(added)}
    # And a run with nothing new keeps the state
    third = run(config, ctx=LocalRunContext(sync_state=second[-1].sync_state or {}))
    assert ids(third) == [] and third[-1].sync_state == second[-1].sync_state
    # And full_backfill ignores the state
    again = run(
        config, ctx=LocalRunContext(sync_state=state), params=LinkedInParams(full_backfill=True)
    )
    assert len(ids(again)) == 43


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 5}], indirect=True)
def test_test_leads_skipped_or_tagged(linkedin_emulator: LinkedInEmulator) -> None:
    linkedin_emulator.add_leads(2, at_ms=linkedin_emulator.now_ms() - 10_000, test=True)
    skipped = run(config_for(linkedin_emulator))
    assert len(ids(skipped)) == 5
    tagged = records(run(config_for(linkedin_emulator, test_leads="tag")))
    assert len(tagged) == 7
    assert sum(1 for r in tagged if r.raw and r.raw.get("test_lead")) == 2


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 60}], indirect=True)
def test_faults_still_give_the_full_set(linkedin_emulator: LinkedInEmulator) -> None:
    # Given faults switched on mid-stream: a 5xx burst, a malformed, an empty, a truncated page
    # (the emulator numbers pages start // count + 1; rebased requests ask for page 1)
    emu = linkedin_emulator
    expected = ids(run(config_for(emu, page_size=10)))
    switch = {
        1: lambda: emu.faults.error_burst(503, count=2),
        2: lambda: emu.faults.malformed_page(1),
        3: lambda: emu.faults.empty_page(1),
        4: lambda: emu.faults.truncate_page(1, keep=3),
    }
    ctx = InstantWaits()
    pages = []
    for page in LinkedInConnector().pages(
        config_for(emu, page_size=10), LinkedInParams(), None, ctx
    ):
        pages.append(page)
        switch.get(len(pages), lambda: None)()
    # Then the job still returns every lead exactly once, in order
    assert ids(pages) == expected and len(set(expected)) == 60
    injected = emu.faults.injected
    assert (injected["error_503"], injected["malformed"], injected["empty"]) == (2, 1, 1)
    assert injected["truncate"] == 1
    assert "linkedin.empty_page" in ctx.log.events("warning")
    assert ctx.waited_s > 0 and "http.retry" in ctx.log.events("warning")


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 30}], indirect=True)
def test_permanent_empty_page_is_a_transient_error(linkedin_emulator: LinkedInEmulator) -> None:
    pages = LinkedInConnector().pages(
        config_for(linkedin_emulator, page_size=10), LinkedInParams(), None, LocalRunContext()
    )
    assert len(next(pages).records) == 10
    linkedin_emulator.faults.empty_page(1, times=None)
    with pytest.raises(TransientError, match="keeps answering an empty page"):
        next(pages)


@pytest.mark.parametrize("linkedin_emulator", [{"daily_limit": 2, "leads": 50}], indirect=True)
def test_daily_limit_parks_until_midnight_utc(linkedin_emulator: LinkedInEmulator) -> None:
    config = config_for(linkedin_emulator, page_size=10)
    seen: list[Page] = []
    with pytest.raises(RateLimited) as info:
        for page in LinkedInConnector().pages(config, LinkedInParams(), None, LocalRunContext()):
            seen.append(page)
    assert len(seen) == 2  # the two requests the day allows
    expected = seconds_until_utc_midnight(datetime.now(UTC))
    assert abs(info.value.retry_after - expected) < 5
    assert "midnight UTC" in str(info.value)
    # And resuming from the last committed checkpoint continues after it (once the day turns)
    assert seen[-1].checkpoint["fetched"] == 20


def test_retired_version_is_a_readable_config_error(linkedin_emulator: LinkedInEmulator) -> None:
    config = config_for(linkedin_emulator, linkedin_version="202301")
    with pytest.raises(ConfigError, match="202301 is not an active API version"):
        run(config)
    result = LinkedInConnector().check(config)
    assert (result.ok, result.reason) == (False, "bad_config")
    assert "linkedin_version" in result.message


def test_check_classifies_failures(linkedin_emulator: LinkedInEmulator) -> None:
    good = LinkedInConnector().check(config_for(linkedin_emulator))
    assert good.ok and len(good.sample) == 5 and all(r.email for r in good.sample)
    bad_token = LinkedInConnector().check(config_for(linkedin_emulator, access_token="nope"))
    assert (bad_token.ok, bad_token.reason) == (False, "bad_credentials")
    assert "nope" not in bad_token.message
    other = LinkedInConnector().check(config_for(linkedin_emulator, sponsored_account_id="999"))
    assert (other.ok, other.reason) == (False, "forbidden")
    port = linkedin_emulator.port
    linkedin_emulator.stop()
    config = LinkedInConfig(
        access_token=TOKEN, sponsored_account_id="123", base_url=f"http://127.0.0.1:{port}"
    )
    down = LinkedInConnector().check(config)
    assert (down.ok, down.reason) == (False, "unreachable")


def test_errors_in_pages_are_typed(linkedin_emulator: LinkedInEmulator) -> None:
    with pytest.raises(AuthError, match="401"):
        run(config_for(linkedin_emulator, access_token="nope"))
    with pytest.raises(ForbiddenError):
        run(config_for(linkedin_emulator, sponsored_account_id="999"))
    linkedin_emulator.faults.expire_tokens()
    with pytest.raises(AuthError):
        run(config_for(linkedin_emulator))


def test_ssrf_guard_refuses_private_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "")
    reset_settings_cache()
    config = LinkedInConfig(access_token="t", sponsored_account_id="1", base_url="http://10.1.2.3")
    result = LinkedInConnector().check(config)
    assert (result.ok, result.reason) == (False, "bad_config")
    assert "private" in result.message


def test_daily_limit_hook_with_mock_transport() -> None:
    # A 429 that carries Retry-After is ordinary throttling (the HTTP layer waits it out).
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"paging": {"total": 0}, "elements": []})

    connector = LinkedInConnector(transport=httpx.MockTransport(handler))
    config = LinkedInConfig(access_token="t", sponsored_account_id="1")
    pages = list(connector.pages(config, LinkedInParams(), None, LocalRunContext()))
    assert len(calls) == 2 and pages[-1].checkpoint["done"] is True
    assert calls[0].headers["LinkedIn-Version"] == config.linkedin_version
    assert calls[0].headers["X-Restli-Protocol-Version"] == "2.0.0"
    assert calls[0].headers["Authorization"] == "Bearer t"


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 90, "forms": 3}], indirect=True)
def test_questions_come_from_each_form_fetched_once(linkedin_emulator: LinkedInEmulator) -> None:
    # Given 90 responses over three forms (each with its own question ids), no form embedded
    emu = linkedin_emulator
    pages = run(config_for(emu, page_size=20))
    # Then every response becomes a lead, its answers joined to its own form's questions
    assert len(set(ids(pages))) == 90 and not [e for p in pages for e in p.errors]
    assert all(r.raw is not None and "form" not in r.raw for r in records(pages))
    lead = records(pages)[1]
    person = emu.dataset.person(1)
    assert (lead.email, lead.title) == (person.email.lower(), person.title.title)
    # And each form was asked for exactly once in the job, with the version headers
    for form_id in emu.form_ids:
        [request] = emu.stats.requests_to(f"/rest/leadForms/{form_id}")
        assert request.status == 200
        assert request.headers.get("linkedin-version") == "202506"


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 30, "forms": 2}], indirect=True)
def test_a_deleted_form_makes_row_errors_not_a_crash(linkedin_emulator: LinkedInEmulator) -> None:
    emu = linkedin_emulator
    gone = emu.form_ids[1]
    del emu.forms[gone]
    ctx = LocalRunContext()
    pages = run(config_for(emu, page_size=10), ctx=ctx)
    errors = [e for p in pages for e in p.errors]
    assert len(records(pages)) == 15 and len(errors) == 15
    assert {e.code for e in errors} == {"form_not_found"}
    assert all(str(gone) in e.message for e in errors)
    # the missing form is asked for once, not once per response
    assert len(emu.stats.requests_to(f"/rest/leadForms/{gone}")) == 1
    assert ctx.log.events("warning").count("linkedin.form_not_found") == 1


def refreshable_config(emu: LinkedInEmulator, **overrides: Any) -> LinkedInConfig:
    return config_for(
        emu,
        refresh_token=emu.refresh_token,
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        token_url=f"{emu.url}/oauth/v2/accessToken",
        **overrides,
    )


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 30}], indirect=True)
def test_expired_token_is_refreshed_mid_job_and_saved(linkedin_emulator: LinkedInEmulator) -> None:
    # Given a job that has read one page when LinkedIn stops accepting its token
    emu = linkedin_emulator
    ctx = LocalRunContext()
    pages = []
    for page in LinkedInConnector().pages(
        refreshable_config(emu, page_size=10), LinkedInParams(), None, ctx
    ):
        pages.append(page)
        if len(pages) == 1:
            emu.faults.expire_tokens()
    # Then it refreshes once, goes on with the new token and reads every lead
    assert len(set(ids(pages))) == 30
    [saved] = ctx.saved_config
    new_token = saved["access_token"]
    assert isinstance(new_token, str) and new_token != TOKEN
    assert len(emu.stats.requests_to("/oauth/v2/accessToken")) == 1
    last = emu.stats.requests_to("/rest/leadFormResponses")[-1]
    assert last.headers.get("authorization") == f"Bearer {new_token}"
    # And neither token appears in the job's log
    logged = repr(ctx.log.lines)
    assert new_token not in logged and TOKEN not in logged


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 5}], indirect=True)
def test_revoked_refresh_token_fails_with_a_readable_error(
    linkedin_emulator: LinkedInEmulator,
) -> None:
    linkedin_emulator.faults.expire_tokens()
    linkedin_emulator.revoke_refresh_token()
    with pytest.raises(AuthError, match="refused to refresh the access token") as info:
        run(refreshable_config(linkedin_emulator))
    assert "authorise Dashin again" in str(info.value)
    assert linkedin_emulator.refresh_token not in str(info.value)


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 8}], indirect=True)
def test_check_renews_an_expired_token_without_storing_it(
    linkedin_emulator: LinkedInEmulator,
) -> None:
    # "Test connection" outside a job: a refreshable source still connects, nothing is saved
    linkedin_emulator.faults.expire_tokens()
    result = LinkedInConnector().check(refreshable_config(linkedin_emulator))
    assert result.ok and len(result.sample) == 5 and all(r.email for r in result.sample)
    assert len(linkedin_emulator.stats.requests_to("/oauth/v2/accessToken")) == 1
    plain = LinkedInConnector().check(config_for(linkedin_emulator))
    assert (plain.ok, plain.reason) == (False, "bad_credentials")
    assert "authorise Dashin again" in plain.message
