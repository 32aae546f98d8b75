"""ZoomInfoConnector against the ZoomInfo emulator over HTTP: JWT life cycle (password and PKI),
completeness, resumption, partitioning past the 1,000-record cap, faults, credits, `check`
reasons and a rate limit shared by concurrent jobs."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import Page
from connectors.errors import AuthError, ConfigError, ForbiddenError
from connectors.kit.ratelimit import RedisRateLimiter, rate_limit_key
from connectors.kit.testing import LocalRunContext
from connectors.providers.zoominfo import connector as zoominfo
from connectors.providers.zoominfo.connector import (
    ZoomInfoConfig,
    ZoomInfoConnector,
    ZoomInfoParams,
)
from connectors.sandbox.zoominfo import ID_BASE, ZoomInfoEmulator
from records.normalize import normalize_email, normalize_linkedin_url

USER, PASSWORD = "zoominfo-user", "zoominfo-pass"
SEARCH = "/search/contact"


@pytest.fixture(autouse=True)
def isolated(zoominfo_isolated: None) -> None:
    """Every test here talks to the emulators with a token cache of its own."""


def config(emu: ZoomInfoEmulator, **overrides: Any) -> ZoomInfoConfig:
    values: dict[str, Any] = {"base_url": emu.url, "username": USER, "password": PASSWORD}
    return ZoomInfoConfig(**(values | overrides))


def run(
    cfg: ZoomInfoConfig,
    params: ZoomInfoParams,
    checkpoint: dict[str, Any] | None = None,
    ctx: LocalRunContext | None = None,
) -> list[Page]:
    return list(ZoomInfoConnector().pages(cfg, params, checkpoint, ctx or LocalRunContext()))


def ids(pages: list[Page]) -> list[str]:
    return [str(r.external_id) for p in pages for r in p.records]


def expected_ids(emu: ZoomInfoEmulator, **filters: Any) -> set[str]:
    selection = emu.dataset.select(**filters)
    return {str(ID_BASE + i) for i in selection.indices(0, len(selection))}


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 600, "seed": 5}], indirect=True)
def test_full_run_returns_every_matching_contact_normalised(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    emu = zoominfo_emulator
    params = ZoomInfoParams(managementLevel="Manager,Director", rpp=40)
    pages = run(config(emu, enrich=True), params)
    got = ids(pages)
    assert len(got) == len(set(got))
    assert set(got) == expected_ids(emu, management_levels=["Manager", "Director"])
    lead = pages[0].records[0]
    person = emu.dataset.person(int(str(lead.external_id)) - ID_BASE)
    assert lead.email == normalize_email(person.email)
    assert lead.linkedin_url == normalize_linkedin_url(person.linkedin_url)
    assert (lead.company_name, lead.company_domain) == (person.company.name, person.company.domain)
    assert (lead.first_name, lead.last_name) == (person.first_name, person.last_name)
    assert lead.country == person.location.country and lead.raw is not None
    assert sum(p.credits_used for p in pages) == len(got) == emu.records_used
    assert emu.tokens_issued == 1


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 1_500, "seed": 2}], indirect=True)
def test_resuming_from_every_checkpoint_yields_exactly_the_rest(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    emu = zoominfo_emulator
    cfg, params = config(emu), ZoomInfoParams(rpp=60)
    ctx = LocalRunContext()
    pages = run(cfg, params, ctx=ctx)
    full = ids(pages)
    assert "zoominfo.partition_split" in ctx.log.events()
    assert sorted(full) == sorted(expected_ids(emu)) and len(full) == len(set(full))
    for k, page in enumerate(pages):
        assert len(str(page.checkpoint)) < 2_000
        rest = ids(run(cfg, params, page.checkpoint))
        assert rest == full[sum(len(p.records) for p in pages[: k + 1]) :]


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 5_000}], indirect=True)
def test_5000_contacts_come_back_through_partitioning(zoominfo_emulator: ZoomInfoEmulator) -> None:
    emu = zoominfo_emulator
    ctx = LocalRunContext()
    got = ids(run(config(emu), ZoomInfoParams(), ctx=ctx))
    assert len(got) == 5_000 == len(set(got))
    assert set(got) == expected_ids(emu)
    assert ctx.log.events().count("zoominfo.partition_split") >= 2
    assert emu.stats.by_status.get(400, 0) == 0  # never paged past 1,000 records


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 900}], indirect=True)
def test_faults_and_token_expiry_do_not_lose_records(zoominfo_emulator: ZoomInfoEmulator) -> None:
    # Given a ZoomInfo that throttles, fails in bursts, serves broken pages and revokes tokens
    emu = zoominfo_emulator
    emu.faults.throttle_every(6, retry_after=0)
    emu.faults.error_burst(502, count=3, after=3)
    emu.faults.malformed_page(2)
    emu.faults.truncate_page(3, keep=5)
    emu.faults.empty_page(4)
    ctx = LocalRunContext()
    got: list[str] = []
    # When every token is revoked after page 2 and again after page 5 (an expired JWT answers
    # the same 401; the emulator's clock cannot be advanced past a token's iat)
    pages = ZoomInfoConnector().pages(config(emu), ZoomInfoParams(rpp=50), None, ctx)
    for n, page in enumerate(pages, 1):
        got += [str(r.external_id) for r in page.records]
        if n == 2:
            emu.faults.expire_tokens()
        if n == 5:
            emu.faults.expire_tokens()
    # Then every contact arrives once, after renewing the token twice
    assert sorted(got) == sorted(expected_ids(emu))
    assert emu.tokens_issued == 3 and ctx.log.events().count("zoominfo.token_renewed") == 2
    injected = emu.faults.injected
    assert injected["throttle"] > 0 and injected["error_502"] == 3
    assert injected["malformed"] == injected["truncate"] == injected["empty"] == 1
    assert emu.violations == 0  # authenticate stayed at one a second


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 300}], indirect=True)
def test_token_is_renewed_before_55_minutes(
    zoominfo_emulator: ZoomInfoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = zoominfo_emulator
    offset = [0.0]
    monkeypatch.setattr(zoominfo._Tokens, "clock", lambda: time.time() + offset[0])
    pages = ZoomInfoConnector().pages(config(emu), ZoomInfoParams(rpp=50), None, LocalRunContext())
    for n, _ in enumerate(pages, 1):
        assert emu.tokens_issued == (1 if n <= 2 else 2)
        if n == 1:
            offset[0] = 54 * 60.0  # still young: kept
        if n == 2:
            offset[0] = 56 * 60.0  # due: renewed before the provider would refuse it
    assert emu.tokens_issued == 2 and emu.stats.by_status.get(401, 0) == 0


def rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


PRIVATE, PUBLIC = rsa_pair()


@pytest.mark.parametrize(
    "zoominfo_emulator", [{"people": 120, "public_key": PUBLIC}], indirect=True
)
def test_pki_signed_jwt_authenticates(zoominfo_emulator: ZoomInfoEmulator) -> None:
    emu = zoominfo_emulator
    pki = config(emu, password=None, client_id="zoominfo-client", private_key=PRIVATE)
    assert set(ids(run(pki, ZoomInfoParams()))) == expected_ids(emu)
    other, _ = rsa_pair()
    wrong = config(emu, password=None, client_id="zoominfo-client", private_key=other)
    assert ZoomInfoConnector().check(wrong).reason == "bad_credentials"
    garbage = config(emu, password=None, client_id="zoominfo-client", private_key="not a key")
    assert ZoomInfoConnector().check(garbage).reason == "bad_config"


def test_config_needs_a_way_to_authenticate() -> None:
    with pytest.raises(ValueError, match="password"):
        ZoomInfoConfig(username=USER)


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 50}], indirect=True)
def test_permanent_errors_raise_typed_errors(zoominfo_emulator: ZoomInfoEmulator) -> None:
    emu = zoominfo_emulator
    with pytest.raises(AuthError):
        run(config(emu, password="wrong"), ZoomInfoParams())
    with pytest.raises(ForbiddenError):
        run(config(emu, username="zoominfo-no-access"), ZoomInfoParams())
    with pytest.raises(ConfigError):  # a cap above the provider's: paging past it is a 400
        cfg = config(emu, max_records=5_000, partition_by=[])
        run(cfg, ZoomInfoParams(rpp=10), {"current": {}, "page": 101})


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 50}], indirect=True)
def test_check_tells_failures_apart(zoominfo_emulator: ZoomInfoEmulator) -> None:
    emu = zoominfo_emulator
    connector = ZoomInfoConnector()
    ok = connector.check(config(emu))
    assert ok.ok and len(ok.sample) == 1 and ok.message.startswith("50 ")
    assert connector.check(config(emu, password="wrong")).reason == "bad_credentials"
    assert connector.check(config(emu, username="zoominfo-no-access")).reason == "forbidden"
    assert connector.check(config(emu, base_url=emu.url + "/nope")).reason == "bad_config"
    assert connector.check(config(emu, base_url="file:///etc")).reason == "bad_config"
    emu.faults.error_burst(503, count=10)
    assert connector.check(config(emu, username="other", password="x")).reason == "unreachable"
    emu.faults.clear()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    assert connector.check(config(emu, base_url=closed)).reason == "unreachable"


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 200, "record_limit": 30}], indirect=True)
def test_enrichment_budget_and_record_limit(zoominfo_emulator: ZoomInfoEmulator) -> None:
    emu = zoominfo_emulator
    cfg = config(emu, enrich=True)
    # a job budget of 20 credits spends exactly 20
    pages = run(cfg, ZoomInfoParams(rpp=50, max_credits=20))
    assert sum(p.credits_used for p in pages) == 20 == emu.records_used
    assert sum(1 for p in pages for r in p.records if r.email) == 20
    # a record limit used up mid-job (25 more would pass 30) keeps the leads, stops enriching
    ctx = LocalRunContext()
    pages = run(cfg, ZoomInfoParams(rpp=50), ctx=ctx)
    assert len(ids(pages)) == 200 and emu.records_used == 20
    assert not any(r.email for p in pages for r in p.records)
    assert ctx.log.events("warning").count("zoominfo.enrich_refused") == 1  # asked only once


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 240}], indirect=True)
def test_four_concurrent_jobs_share_one_limit(
    zoominfo_emulator: ZoomInfoEmulator, redis_url: str
) -> None:
    # Given ZoomInfo allowing 8 requests a second, and four jobs of 7 searches each (6 full
    # pages, then the empty page that ends the search: counts alone never end one)
    emu = zoominfo_emulator
    emu.set_rate_limit(8, 1.0)
    client = redis.Redis.from_url(redis_url)
    cfg = config(emu, requests_per_minute=8, limit_window_s=1.0)

    def limiter(name: str, limit: int, period_s: float) -> RedisRateLimiter:
        key = rate_limit_key("shared-source", name)
        return RedisRateLimiter(client, key, limit, period_s, margin_s=0.1)

    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def job(n: int) -> None:
        try:
            ctx = LocalRunContext(job_id=f"job-{n}", limiter_factory=limiter)
            results[n] = ids(run(cfg, ZoomInfoParams(rpp=40), ctx=ctx))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=job, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    # Then each job gets every contact and ZoomInfo never saw a request over its limits
    assert not errors and len(results) == 4
    assert all(sorted(r) == sorted(expected_ids(emu)) for r in results.values())
    assert emu.violations == 0 and emu.tokens_issued == 1
    searches = len(emu.stats.requests_to(SEARCH))
    assert searches == 28 and elapsed >= (searches - 8) / 8


@pytest.mark.parametrize("zoominfo_emulator", [{"people": 60, "record_limit": 100}], indirect=True)
def test_the_usage_header_is_reported_as_the_last_known_balance(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    # Given a contract with 100 record credits, when a job enriches 60 contacts
    ctx = LocalRunContext()
    run(config(zoominfo_emulator, enrich=True), ZoomInfoParams(rpp=50), ctx=ctx)
    # Then the balance was reported as the headers said it fell (each change once), ending at 40
    assert ctx.balances[0] == 100
    assert ctx.balances[-1] == 40 == 100 - zoominfo_emulator.records_used
    assert ctx.balances == sorted(set(ctx.balances), reverse=True)
