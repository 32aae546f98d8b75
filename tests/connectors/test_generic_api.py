"""Declarative REST connector against the generic emulator over real HTTP (MockTransport only for
shapes the emulator cannot produce), plus the dotted-path reader it is built on."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address
from typing import Any

import httpx
import pytest

from connectors.base import Page
from connectors.errors import AuthError, ConfigError, RateLimited, TransientError
from connectors.kit import ssrf
from connectors.kit.testing import LocalRunContext
from connectors.providers.generic_api.connector import (
    GenericApiConfig,
    GenericApiConnector,
    GenericApiParams,
)
from connectors.providers.generic_api.jsonpath import MISSING, get_path, order_key, read_fields
from connectors.sandbox.generic import GenericEmulator
from records import LeadRecord
from runtime.settings import reset_settings_cache

TOKEN = "generic-test-token"
FIELD_MAP = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "linkedin_url": "linkedin",
    "title": "job.title",
    "company_name": "company.name",
    "company_domain": "company.domain",
    "company_size": "company.size",
    "company_industry": "company.industry",
    "city": "location.city",
    "state": "location.state",
    "country": "location.country",
}
PAGINATIONS: dict[str, dict[str, Any]] = {
    "page": {"type": "page", "page_param": "page", "size_param": "size", "page_size": 25},
    "offset": {"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 25},
    "cursor": {"type": "cursor", "cursor_path": "meta.next_cursor", "size_param": "limit",
               "page_size": 25},
    "link": {"type": "link", "size_param": "size", "page_size": 25},
}  # fmt: skip


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.0/8")
    reset_settings_cache()
    yield
    reset_settings_cache()


def config_for(emu: GenericEmulator, **overrides: Any) -> GenericApiConfig:
    values: dict[str, Any] = {
        "url": f"{emu.url}{emu.path}",
        "auth": "bearer",
        "bearer_token": TOKEN,
        "records_path": "data.items",
        "total_path": "meta.total",
        "pagination": PAGINATIONS[emu.pagination],
        "field_map": FIELD_MAP,
    }
    return GenericApiConfig(**{**values, **overrides})


class InstantWaits(LocalRunContext):
    """Retry and throttle waits are recorded, not slept: the backoff is asserted, not endured."""

    def wait(self, seconds: float) -> None:
        self.waited_s += max(0.0, seconds)


def run(
    config: GenericApiConfig,
    checkpoint: dict[str, Any] | None = None,
    ctx: LocalRunContext | None = None,
    transport: httpx.BaseTransport | None = None,
) -> list[Page]:
    ctx = ctx or LocalRunContext()
    connector = GenericApiConnector(transport=transport)
    return list(connector.pages(config, GenericApiParams(), checkpoint, ctx))


def ids(pages: list[Page]) -> list[str | None]:
    return [r.external_id for p in pages for r in p.records]


def expected_ids(count: int, start: int = 0) -> list[str]:
    return [f"c_{i}" for i in range(start, count)]


# -- the dotted-path reader ---------------------------------------------------------------------


def test_get_path_reads_keys_and_indexes() -> None:
    doc = {"data": {"items": [{"a": 1}, {"a": 2}]}, "n": None}
    assert get_path(doc, "data.items.1.a") == 2
    assert get_path(doc, "data.items.-1.a") == 2
    assert get_path(doc, "") is doc
    assert get_path(doc, "data.missing", MISSING) is MISSING
    assert get_path(doc, "data.items.x") is None and get_path(doc, "data.items.9") is None
    assert get_path(doc, "n", "default") is None  # a JSON null is a value, not a miss
    with pytest.raises(ValueError, match="empty segment"):
        get_path(doc, "data..items")


def test_read_fields_and_order_key() -> None:
    record = {"n": 5, "flag": True, "obj": {"x": 1}, "s": "text"}
    fields = read_fields(record, {"a": "n", "b": "flag", "c": "obj", "d": "s", "e": "none"})
    assert fields == {"a": "5", "b": None, "c": None, "d": "text", "e": None}
    assert order_key("2025-01-01T00:00:00Z") == order_key("2025-01-01T01:00:00+01:00")
    assert order_key("2025-01-02T00:00:00") > order_key("2025-01-01T23:00:00Z")  # type: ignore[operator]
    assert order_key(10) > order_key(9.5)  # type: ignore[operator]
    assert order_key(None) is None and order_key(True) is None


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        GenericApiConfig(url="ftp://example.com/x")
    with pytest.raises(ValueError, match="needs bearer_token"):
        GenericApiConfig(url="https://example.com", auth="bearer")
    with pytest.raises(ValueError, match="unknown lead field"):
        GenericApiConfig(url="https://example.com", field_map={"shoe_size": "x"})
    with pytest.raises(ValueError, match="pagination_in 'body' needs method POST"):
        GenericApiConfig(url="https://example.com", pagination_in="body")


# -- full runs and checkpoints ------------------------------------------------------------------


@pytest.mark.parametrize(
    "generic_emulator",
    [{"records": 110, "pagination": style} for style in PAGINATIONS],
    indirect=True,
    ids=list(PAGINATIONS),
)
def test_every_pagination_style_returns_every_record(generic_emulator: GenericEmulator) -> None:
    pages = run(config_for(generic_emulator))
    # Then each record arrives once, in order, normalised through the field map
    assert ids(pages) == expected_ids(110)
    assert len(pages) == 5 and pages[-1].checkpoint["done"] is True
    lead = pages[0].records[3]
    person = generic_emulator.dataset.person(3)
    assert lead == LeadRecord(
        first_name=person.first_name,
        last_name=person.last_name,
        email=person.email.lower(),
        title=person.title.title,
        company_name=person.company.name,
        company_domain=person.company.domain,
        company_industry=person.company.industry,
        company_size=str(person.company.employees),
        linkedin_url=person.linkedin_url,
        phone=person.phone,
        city=person.location.city,
        state=person.location.state,
        country=person.location.country,
        external_id="c_3",
        raw=lead.raw,
    )
    assert lead.raw is not None and lead.raw["id"] == "c_3"


@pytest.mark.parametrize(
    "generic_emulator",
    [{"records": 70, "pagination": style} for style in PAGINATIONS],
    indirect=True,
    ids=list(PAGINATIONS),
)
def test_resume_from_every_checkpoint(generic_emulator: GenericEmulator) -> None:
    config = config_for(generic_emulator, total_path=None)
    full = run(config)
    assert ids(full) == expected_ids(70)
    for k, page in enumerate(full):
        assert ids(run(config, checkpoint=page.checkpoint)) == ids(full[k + 1 :]), f"page {k}"


@pytest.mark.parametrize("generic_emulator", [{"records": 60}], indirect=True)
def test_post_with_paging_in_the_body(generic_emulator: GenericEmulator) -> None:
    config = config_for(
        generic_emulator, method="POST", body={"status": "active"}, pagination_in="body"
    )
    assert ids(run(config)) == expected_ids(60)
    assert all(r.method == "POST" and r.query == "" for r in generic_emulator.stats.log)


# -- auth ---------------------------------------------------------------------------------------

AUTHS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("none", {"auth": "none"}, {"auth": "none"}),
    ("bearer", {"auth": "bearer", "bearer_token": TOKEN}, {"auth": "bearer"}),
    (
        "api_key_header",
        {"auth": "api_key", "api_key": TOKEN, "api_key_name": "X-Key"},
        {"auth": "api_key_header", "api_key_name": "X-Key"},
    ),
    (
        "api_key_query",
        {"auth": "api_key", "api_key": TOKEN, "api_key_name": "key", "api_key_in": "query"},
        {"auth": "api_key_query", "api_key_param": "key"},
    ),
    (
        "basic",
        {"auth": "basic", "basic_username": "u", "basic_password": "p@ss"},
        {"auth": "basic", "username": "u", "password": "p@ss"},
    ),
]


@pytest.mark.parametrize(
    ("generic_emulator", "config"),
    [({"records": 30, **emu_opts}, cfg) for _, cfg, emu_opts in AUTHS],
    indirect=["generic_emulator"],
    ids=[name for name, _, _ in AUTHS],
)
@pytest.mark.parametrize("pagination", ["page", "link"])
def test_every_auth_style(
    generic_emulator: GenericEmulator, config: dict[str, Any], pagination: str
) -> None:
    generic_emulator.pagination = pagination  # type: ignore[assignment]
    cfg = config_for(generic_emulator, **{"bearer_token": None, **config})
    assert ids(run(cfg)) == expected_ids(30)
    assert GenericApiConnector().check(cfg).ok
    if config["auth"] != "none":
        # And a wrong secret is a bad_credentials failure that does not echo the secret
        secret_field = {"bearer": "bearer_token", "api_key": "api_key", "basic": "basic_password"}
        wrong_secret = {secret_field[config["auth"]]: "zzz-wrong"}
        wrong = config_for(generic_emulator, **{"bearer_token": None, **config, **wrong_secret})
        result = GenericApiConnector().check(wrong)
        assert (result.ok, result.reason) == (False, "bad_credentials")
        assert "zzz-wrong" not in result.message
        with pytest.raises(AuthError):
            run(wrong)


# -- check() ------------------------------------------------------------------------------------


def test_check_distinguishes_failures(generic_emulator: GenericEmulator) -> None:
    ok = GenericApiConnector().check(config_for(generic_emulator))
    assert ok.ok and len(ok.sample) == 5 and ok.sample[0].external_id == "c_0"
    wrong_path = GenericApiConnector().check(config_for(generic_emulator, records_path="items"))
    assert (wrong_path.ok, wrong_path.reason) == (False, "bad_config")
    assert "records_path 'items' not found" in wrong_path.message
    not_found = GenericApiConnector().check(
        config_for(generic_emulator, url=f"{generic_emulator.url}/nope")
    )
    assert (not_found.ok, not_found.reason) == (False, "bad_config") and "404" in not_found.message
    url = f"{generic_emulator.url}{generic_emulator.path}"
    generic_emulator.stop()
    down = GenericApiConnector().check(config_for_url(url))
    assert (down.ok, down.reason) == (False, "unreachable")


def config_for_url(url: str) -> GenericApiConfig:
    return GenericApiConfig(url=url, auth="bearer", bearer_token=TOKEN, records_path="data.items")


def test_check_forbidden_with_mock_transport() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(403, json={"error": "plan"}))
    result = GenericApiConnector(transport=transport).check(
        config_for_url("https://api.example.com/x")
    )
    assert (result.ok, result.reason) == (False, "forbidden") and "plan" in result.message


# -- incremental --------------------------------------------------------------------------------


@pytest.mark.parametrize("generic_emulator", [{"records": 50}], indirect=True)
def test_incremental_sync_fetches_only_new_records(generic_emulator: GenericEmulator) -> None:
    config = config_for(generic_emulator, incremental={"param": "updated_since"})
    first = run(config)
    state = first[-1].sync_state
    assert ids(first) == expected_ids(50)
    assert state is not None and state["ids_at_since"] == ["c_49"]
    # When five records are added, the next run (from the stored state) gets only them
    generic_emulator.add_records(5)
    second = run(config, ctx=LocalRunContext(sync_state=state))
    assert ids(second) == expected_ids(55, start=50)
    sent = generic_emulator.stats.log[-1].query
    assert f"updated_since={state['updated_since']}".replace(":", "%3A") in sent
    assert second[-1].sync_state is not None and second[-1].sync_state["ids_at_since"] == ["c_54"]
    # And a run with nothing new yields nothing and keeps the state
    third = run(config, ctx=LocalRunContext(sync_state=second[-1].sync_state))
    assert ids(third) == [] and third[-1].sync_state == second[-1].sync_state


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("generic_emulator", [{"records": 120}], indirect=True)
def test_faults_still_give_the_full_set(generic_emulator: GenericEmulator) -> None:
    faults = generic_emulator.faults
    faults.throttle_every(3, retry_after=7)
    faults.error_burst(503, count=2, after=1)
    faults.malformed_page(2)
    faults.empty_page(3)
    faults.truncate_page(4, keep=5)
    ctx = InstantWaits()
    pages = run(config_for(generic_emulator), ctx=ctx)
    assert ids(pages) == expected_ids(120)
    assert faults.injected["throttle"] >= 2 and faults.injected["error_503"] == 2
    # And each 429 was waited out for its Retry-After
    assert ctx.waited_s >= 7 * faults.injected["throttle"]
    assert {"malformed", "empty", "truncate"} <= set(faults.injected)
    assert "http.throttled" in ctx.log.events()
    assert "generic_api.incomplete_page" in ctx.log.events("warning")


@pytest.mark.parametrize("generic_emulator", [{"records": 60}], indirect=True)
def test_persistent_faults_are_typed_errors(generic_emulator: GenericEmulator) -> None:
    generic_emulator.faults.malformed_page(2, times=None)
    with pytest.raises(TransientError, match="not JSON"):
        run(config_for(generic_emulator), ctx=InstantWaits())
    generic_emulator.faults.clear()
    generic_emulator.faults.empty_page(2, times=None)
    with pytest.raises(TransientError, match="short pages after 25 of 60"):
        run(config_for(generic_emulator), ctx=InstantWaits())
    generic_emulator.faults.clear()
    generic_emulator.faults.error_burst(500, count=100)
    ctx = InstantWaits()
    with pytest.raises(TransientError, match="failed after 6 attempts"):
        run(config_for(generic_emulator, pagination={"type": "none"}), ctx=ctx)
    assert ctx.waited_s > 0 and "http.retry" in ctx.log.events("warning")
    # And a long Retry-After parks the job instead of holding the worker
    generic_emulator.faults.clear()
    generic_emulator.faults.throttle_for(3600)
    with pytest.raises(RateLimited) as parked:
        run(config_for(generic_emulator), ctx=InstantWaits())
    assert parked.value.retry_after > 3000


@pytest.mark.parametrize("generic_emulator", [{"records": 40}], indirect=True)
def test_rate_limit_goes_through_the_shared_limiter(generic_emulator: GenericEmulator) -> None:
    acquired: list[tuple[str, int, float]] = []

    class Recording:
        def __init__(self, key: tuple[str, int, float]) -> None:
            self.key = key

        def acquire(self, cost: int = 1) -> None:
            acquired.append(self.key)

    ctx = LocalRunContext(limiter_factory=lambda *key: Recording(key))
    config = config_for(generic_emulator, rate_limit={"requests": 5, "period_s": 1})
    pages = run(config, ctx=ctx)
    assert len(pages) == 2 and acquired == [("generic_api", 5, 1.0)] * 2


# -- SSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://10.20.30.40/x", "private"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://[::1]:9/x", "loopback"),
        ("http://internal.example/x", "private"),  # a name resolving to a private address
    ],
)
def test_ssrf_targets_are_refused_unless_allowed(
    monkeypatch: pytest.MonkeyPatch, url: str, why: str
) -> None:
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "")
    reset_settings_cache()
    real_resolve = ssrf.resolve
    monkeypatch.setattr(
        ssrf,
        "resolve",
        lambda host, port: (
            [ip_address("10.0.0.7")] if host == "internal.example" else real_resolve(host, port)
        ),
    )
    config = GenericApiConfig(url=url)
    result = GenericApiConnector().check(config)
    assert (result.ok, result.reason) == (False, "bad_config")
    assert why in result.message and "DASHIN_SSRF_ALLOW" in result.message
    with pytest.raises(ConfigError, match=why):
        run(config)


# -- shapes only a mock can produce -------------------------------------------------------------


def test_link_to_another_origin_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        link = '<https://evil.example/steal?page=2>; rel="next"'
        return httpx.Response(200, json=[{"id": 1, "email": "a@b.co"}], headers={"Link": link})

    config = GenericApiConfig(
        url="https://api.example.com/people", pagination={"type": "link"}, auth="bearer",
        bearer_token="s3cret-token",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="another origin"):
        run(config, transport=httpx.MockTransport(handler))


def test_exclusive_since_api_and_records_sharing_the_boundary_timestamp() -> None:
    # Given an API filtering `updated_at > since` whose records share timestamps
    rows: list[dict[str, Any]] = [
        {"id": "a", "email": "a@x.co", "updated_at": 100},
        {"id": "b", "email": "b@x.co", "updated_at": 200},
        {"id": "c", "email": "c@x.co", "updated_at": 200},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        since = request.url.params.get("since")
        return httpx.Response(
            200, json=[r for r in rows if since is None or r["updated_at"] > float(since)]
        )

    config = GenericApiConfig(
        url="https://api.example.com/people",
        incremental={"param": "since", "updated_at_path": "updated_at"},
    )
    transport = httpx.MockTransport(handler)
    first = run(config, transport=transport)
    assert ids(first) == ["a", "b", "c"]
    assert first[-1].sync_state == {"updated_since": 200, "ids_at_since": ["b", "c"]}
    # When a record with the boundary timestamp and a newer one appear
    rows.append({"id": "d", "email": "d@x.co", "updated_at": 300})
    second = run(
        config, ctx=LocalRunContext(sync_state=first[-1].sync_state or {}), transport=transport
    )
    assert ids(second) == ["d"]
