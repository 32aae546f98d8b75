"""ApolloConnector against the Apollo emulator over HTTP: completeness, resumption, partitioning,
faults, credit budgets, `check` reasons and a rate limit shared by concurrent jobs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from connectors.base import Page
from connectors.errors import AuthError, ConfigError, ForbiddenError
from connectors.kit import http
from connectors.kit.partition import COUNTRIES
from connectors.kit.ratelimit import RedisRateLimiter, rate_limit_key
from connectors.kit.testing import LocalRunContext
from connectors.providers.apollo import ApolloConfig, ApolloConnector, ApolloParams, to_lead
from connectors.sandbox.apollo import ApolloEmulator
from records.normalize import normalize_email, normalize_linkedin_url
from runtime.settings import reset_settings_cache

KEY = "apollo-test-key"
SMALL = {"people": 1_200, "seed": 3, "max_records": 300}


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.0/8")
    reset_settings_cache()
    yield
    reset_settings_cache()


def config(emu: ApolloEmulator, **overrides: Any) -> ApolloConfig:
    values: dict[str, Any] = {
        "api_key": KEY,
        "base_url": emu.url + "/api/v1",
        "search_hourly_limit": None,
        "max_records": emu.max_records,
    }
    return ApolloConfig(**(values | overrides))


def run(
    emu: ApolloEmulator,
    cfg: ApolloConfig,
    params: ApolloParams,
    checkpoint: dict[str, Any] | None = None,
    ctx: LocalRunContext | None = None,
) -> list[Page]:
    return list(ApolloConnector().pages(cfg, params, checkpoint, ctx or LocalRunContext()))


def ids(pages: list[Page]) -> list[str]:
    return [str(r.external_id) for p in pages for r in p.records]


def expected_ids(emu: ApolloEmulator, **filters: Any) -> set[str]:
    selection = emu.dataset.select(**filters)
    return {emu.person_id(i) for i in selection.indices(0, len(selection))}


@pytest.mark.parametrize("apollo_emulator", [SMALL], indirect=True)
def test_full_run_returns_every_matching_person_normalised(
    apollo_emulator: ApolloEmulator,
) -> None:
    # Given a search that fits under the cap, with enrichment on
    emu = apollo_emulator
    params = ApolloParams(person_seniorities=["manager", "director"], per_page=40)
    # When the job runs
    pages = run(emu, config(emu, enrich=True), params)
    # Then it returns exactly the matching people, once each, with their revealed emails
    got = ids(pages)
    assert len(got) == len(set(got))
    assert set(got) == expected_ids(emu, seniorities=["manager", "director"])
    by_id = {r.external_id: r for p in pages for r in p.records}
    index = next(i for i in range(emu.dataset.size) if emu.person_id(i) in by_id)
    person, lead = emu.dataset.person(index), by_id[emu.person_id(index)]
    assert lead.email == normalize_email(person.email)
    assert lead.linkedin_url == normalize_linkedin_url(person.linkedin_url)
    assert (lead.company_name, lead.company_domain) == (person.company.name, person.company.domain)
    assert lead.company_size == str(person.company.employees)
    assert lead.city == person.location.city and lead.raw is not None
    assert sum(p.credits_used for p in pages) == len(got) == emu.credits_used
    assert pages[-1].progress is not None and pages[-1].progress.done == len(got)


@pytest.mark.parametrize("apollo_emulator", [SMALL], indirect=True)
def test_resuming_from_every_checkpoint_yields_exactly_the_rest(
    apollo_emulator: ApolloEmulator,
) -> None:
    # Given a full run that had to partition (1,200 people, 300 per search)
    emu = apollo_emulator
    cfg, params = config(emu), ApolloParams(per_page=50)
    ctx = LocalRunContext()
    pages = run(emu, cfg, params, ctx=ctx)
    full = ids(pages)
    assert ctx.log.events().count("apollo.partition_split") >= 2
    assert sorted(full) == sorted(expected_ids(emu)) and len(full) == len(set(full))
    # When the job is resumed from the checkpoint of each page
    for k, page in enumerate(pages):
        assert len(str(page.checkpoint)) < 2_000  # plan and position only, never records
        rest = ids(run(emu, cfg, params, page.checkpoint))
        # Then it yields exactly the records after that page, in the same order
        assert rest == full[sum(len(p.records) for p in pages[: k + 1]) :]


@pytest.mark.parametrize("apollo_emulator", [{"people": 120_000}], indirect=True)
def test_120k_people_come_back_through_partitioning(apollo_emulator: ApolloEmulator) -> None:
    emu = apollo_emulator
    ctx = LocalRunContext()
    pages = run(emu, config(emu), ApolloParams(), ctx=ctx)
    got = ids(pages)
    assert len(got) == 120_000 == len(set(got))
    assert set(got) == expected_ids(emu)
    assert "apollo.partition_split" in ctx.log.events("info")
    assert "apollo.partition_unsplittable" not in ctx.log.events()
    assert "apollo.short_page" not in ctx.log.events()


@pytest.mark.parametrize("apollo_emulator", [SMALL], indirect=True)
def test_dimensions_are_tried_in_the_configured_order(apollo_emulator: ApolloEmulator) -> None:
    # Given locations first, from the search's own filter (so splitting by them loses no one):
    # the United States alone (26 of 53 places) still exceeds the cap
    emu = apollo_emulator
    ctx = LocalRunContext()
    cfg = config(emu, partition_by=["person_locations", "employees"])
    places = list(COUNTRIES)
    got = ids(run(emu, cfg, ApolloParams(per_page=100, person_locations=places), ctx=ctx))
    # Then it is split again by headcount, and every person arrives exactly once
    assert sorted(got) == sorted(expected_ids(emu, locations=places))
    splits = [f for _, e, f in ctx.log.lines if e == "apollo.partition_split"]
    assert splits[0] == {
        "partition": {},
        "total": len(got),
        "children": 20,
        "dimension": "person_locations",
    }
    assert splits[1]["partition"] == {"person_locations": ["United States"]}


@pytest.mark.parametrize("apollo_emulator", [SMALL], indirect=True)
def test_unsplittable_partition_warns_and_takes_what_the_cap_allows(
    apollo_emulator: ApolloEmulator,
) -> None:
    emu = apollo_emulator
    ctx = LocalRunContext()
    pages = run(emu, config(emu, partition_by=[]), ApolloParams(per_page=100), ctx=ctx)
    assert len(set(ids(pages))) == 300
    warnings = [f for lvl, e, f in ctx.log.lines if e == "apollo.partition_unsplittable"]
    assert warnings == [{"partition": {}, "total": 1_200, "cap": 300, "skipped": 900}]


@pytest.mark.parametrize("apollo_emulator", [SMALL], indirect=True)
def test_faults_do_not_lose_or_duplicate_records(apollo_emulator: ApolloEmulator) -> None:
    # Given an Apollo that throttles, fails in bursts and serves broken pages
    emu = apollo_emulator
    emu.faults.throttle_every(5, retry_after=0)
    emu.faults.error_burst(503, count=3, after=4)
    emu.faults.error_burst(500, count=2, after=10)
    emu.faults.malformed_page(2)
    emu.faults.truncate_page(3, keep=7)
    emu.faults.empty_page(4)
    # When the job runs
    ctx = LocalRunContext()
    got = ids(run(emu, config(emu), ApolloParams(per_page=50), ctx=ctx))
    # Then every person arrives exactly once, and the faults really fired
    assert sorted(got) == sorted(expected_ids(emu))
    injected = emu.faults.injected
    assert injected["throttle"] > 0 and injected["error_503"] == 3 and injected["error_500"] == 2
    assert injected["malformed"] == injected["truncate"] == injected["empty"] == 1
    assert "http.retry" in ctx.log.events()


@pytest.mark.parametrize("apollo_emulator", [{"people": 500, "legacy_shape": True}], indirect=True)
def test_placeholder_emails_are_never_stored(apollo_emulator: ApolloEmulator) -> None:
    emu = apollo_emulator
    pages = run(emu, config(emu), ApolloParams(per_page=100))
    records = [r for p in pages for r in p.records]
    assert len(records) == 500
    assert all(r.raw and r.raw["email"] == "email_not_unlocked@domain.com" for r in records)
    assert all(r.email is None for r in records)
    assert all(r.last_name and r.linkedin_url for r in records)  # the older full shape


@pytest.mark.parametrize("apollo_emulator", [{"people": 200}], indirect=True)
def test_enrichment_spends_at_most_the_credit_budget(apollo_emulator: ApolloEmulator) -> None:
    emu = apollo_emulator
    cfg = config(emu, enrich=True)
    ctx = LocalRunContext(credit_budget=40)
    pages = run(emu, cfg, ApolloParams(per_page=30, max_credits=25), ctx=ctx)
    assert len(ids(pages)) == 200
    assert sum(p.credits_used for p in pages) == 25 == emu.credits_used
    assert sum(1 for p in pages for r in p.records if r.email) == 25
    assert "apollo.credit_budget_spent" in ctx.log.events("warning")
    # a resumed job keeps counting from the checkpoint: nothing more to spend
    resumed = run(emu, cfg, ApolloParams(per_page=30, max_credits=25), pages[0].checkpoint)
    assert len(ids(resumed)) == 170 and all(p.credits_used == 0 for p in resumed)
    assert emu.credits_used == 25


@pytest.mark.parametrize("apollo_emulator", [{"people": 50}], indirect=True)
def test_permanent_errors_raise_typed_errors(apollo_emulator: ApolloEmulator) -> None:
    emu = apollo_emulator
    with pytest.raises(AuthError):
        run(emu, config(emu, api_key="wrong-key"), ApolloParams())
    with pytest.raises(ForbiddenError, match="not authorized to access"):
        run(emu, config(emu, api_key="apollo-non-master-key"), ApolloParams())
    with pytest.raises(ConfigError):
        run(emu, config(emu), ApolloParams(organization_num_employees_ranges=["many"]))


@pytest.mark.parametrize("apollo_emulator", [{"people": 50}], indirect=True)
def test_check_tells_failures_apart(apollo_emulator: ApolloEmulator) -> None:
    emu = apollo_emulator
    connector = ApolloConnector()
    ok = connector.check(config(emu))
    assert ok.ok and ok.reason is None and len(ok.sample) == 1
    assert connector.check(config(emu, api_key="wrong")).reason == "bad_credentials"
    assert connector.check(config(emu, api_key="apollo-non-master-key")).reason == "forbidden"
    assert connector.check(config(emu, base_url=emu.url + "/nope")).reason == "bad_config"
    assert connector.check(config(emu, base_url="ftp://127.0.0.1/api/v1")).reason == "bad_config"
    bad_filter = config(emu, default_filters={"organization_num_employees_ranges": ["x"]})
    assert connector.check(bad_filter).reason == "bad_config"
    emu.faults.error_burst(503, count=10)
    assert connector.check(config(emu)).reason == "unreachable"
    emu.faults.clear()
    assert connector.check(config(emu, base_url=closed_port_url())).reason == "unreachable"


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


@pytest.mark.parametrize("apollo_emulator", [{"people": 240}], indirect=True)
def test_four_concurrent_jobs_share_one_limit(
    apollo_emulator: ApolloEmulator, redis_url: str
) -> None:
    # Given Apollo allowing 8 searches per second, and four jobs of 6 requests each
    emu = apollo_emulator
    emu.set_rate_limit(8, 1.0)
    client = redis.Redis.from_url(redis_url)
    cfg = config(emu, search_limit=8, limit_window_s=1.0)

    def limiter(name: str, limit: int, period_s: float) -> RedisRateLimiter:
        return RedisRateLimiter(
            client, rate_limit_key("shared-source", name), limit, period_s, margin_s=0.1
        )

    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def job(n: int) -> None:
        try:
            ctx = LocalRunContext(job_id=f"job-{n}", limiter_factory=limiter)
            results[n] = ids(run(emu, cfg, ApolloParams(per_page=40), ctx=ctx))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    # When they run at the same time
    started = time.monotonic()
    threads = [threading.Thread(target=job, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    # Then each gets every person, and Apollo never saw a request over its limit
    assert not errors
    assert all(sorted(r) == sorted(expected_ids(emu)) for r in results.values())
    assert emu.violations == 0
    searches = len(emu.stats.requests_to("/api/v1/mixed_people/api_search"))
    assert searches == 24 and elapsed >= (searches - 8) / 8


def test_to_lead_maps_the_full_shape() -> None:
    person = {
        "id": "p1",
        "first_name": " Ada ",
        "last_name": "Lovelace",
        "email": "Ada@Example.COM",
        "linkedin_url": "http://linkedin.com/in/Ada-L/",
        "organization": {"name": "Analytical", "website_url": "https://www.analytical.io/x"},
        "employment_history": [{"title": "x"}],
    }
    lead = to_lead(person)
    assert (lead.first_name, lead.email, lead.company_domain) == (
        "Ada",
        "ada@example.com",
        "analytical.io",
    )
    assert lead.linkedin_url == "https://www.linkedin.com/in/ada-l"
    assert lead.raw is not None and "employment_history" not in lead.raw


def test_bulk_match_is_sent_ten_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/people/bulk_match"):
            details = json.loads(request.content)["details"]
            sizes.append(len(details))
            return httpx.Response(200, json={"matches": [{"id": d["id"]} for d in details]})
        people = [{"id": f"p{i}", "has_email": i % 4 != 0} for i in range(25)]
        return httpx.Response(200, json={"total_entries": 25, "people": people})

    make_client = http.make_client
    monkeypatch.setattr(
        http,
        "make_client",
        lambda *a, **kw: make_client(*a, **kw, transport=httpx.MockTransport(handler)),
    )
    cfg = ApolloConfig(api_key="k", base_url="https://api.example/api/v1", enrich=True)
    pages = list(ApolloConnector().pages(cfg, ApolloParams(per_page=25), None, LocalRunContext()))
    # people without an email are not worth a credit
    assert sizes == [10, 8] and pages[0].credits_used == 18
