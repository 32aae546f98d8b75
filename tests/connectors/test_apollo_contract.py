"""Apollo contract tests: the connector against Apollo's documented answers, and the emulator
answering in those same shapes (issue 13, item 6).

The fixtures in `fixtures/apollo/` are Apollo's documented examples (README there says where
each comes from). The connector reads them through `httpx.MockTransport`; where the
documentation allows two readings (the current and the older search shape, a miss in
`bulk_match` as `null` or left out, two 401 texts, two 429 bodies) both are tested. Then the
sandbox emulator is asked over HTTP and its answers are compared with the fixtures, field by
field: an emulator that drifts from the documentation fails here, not in production.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from connectors.base import Page
from connectors.errors import AuthError, ConfigError, ForbiddenError, RateLimited
from connectors.kit import http
from connectors.kit.testing import LocalRunContext
from connectors.providers.apollo import ApolloConfig, ApolloConnector, ApolloParams, _Session
from connectors.sandbox.apollo import ApolloEmulator
from runtime.settings import reset_settings_cache

FIXTURES = Path(__file__).parent / "fixtures" / "apollo"
API = "/api/v1"
SEARCH, LEGACY_SEARCH = f"{API}/mixed_people/api_search", f"{API}/mixed_people/search"
BULK_MATCH, MATCH, HEALTH = f"{API}/people/bulk_match", f"{API}/people/match", f"{API}/auth/health"
KEY = "apollo-test-key"
Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> Any:
    path = FIXTURES / name
    return json.loads(path.read_text()) if name.endswith(".json") else path.read_text()


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.0/8")
    reset_settings_cache()
    yield
    reset_settings_cache()


class Replay:
    """A MockTransport serving fixtures by path; `answers[path]` is a list used in turn (the
    last one repeats). Records every request."""

    def __init__(self, answers: dict[str, list[httpx.Response]]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.answers[request.url.path]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[httpx.Response]]], Replay]:
    def install(answers: dict[str, list[httpx.Response]]) -> Replay:
        transport = Replay(answers)
        make_client = http.make_client
        monkeypatch.setattr(
            http,
            "make_client",
            lambda *a, **kw: make_client(*a, **kw, transport=httpx.MockTransport(transport)),
        )
        return transport

    return install


def ok(name: str) -> httpx.Response:
    return httpx.Response(200, json=fixture(name))


def text(status: int, name: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, text=fixture(name), headers={"Content-Type": "text/plain", **headers}
    )


def error(status: int, name: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=fixture(name), headers=headers)


def config(**overrides: Any) -> ApolloConfig:
    # the documented search matches 232,764,882 people: a cap of 3 keeps the replay to one page
    values: dict[str, Any] = {
        "api_key": KEY,
        "base_url": "https://api.apollo.io/api/v1",
        "max_records": 3,
        "partition_by": [],
    }
    return ApolloConfig(**(values | overrides))


def run(cfg: ApolloConfig, ctx: LocalRunContext | None = None) -> list[Page]:
    params = ApolloParams(per_page=3, person_titles=["vp of sales"])
    return list(ApolloConnector().pages(cfg, params, None, ctx or LocalRunContext()))


# ---- the connector reads the documented answers ------------------------------------------------


def test_current_search_shape_gives_leads_without_guessing_names_or_emails(
    replay: Callable[..., Replay],
) -> None:
    # Given People API Search answering its documented example
    calls = replay({SEARCH: [ok("people_api_search.json")]})
    # When a job reads it
    ctx = LocalRunContext()
    pages = run(config(), ctx)
    # Then each person is a lead keyed by Apollo id: the obfuscated last name is not a last name,
    # a null title stays empty, and there is no email (search never has one)
    leads = [r for p in pages for r in p.records]
    assert [r.external_id for r in leads] == [
        "64a7ff0cc4dfae00013df1a5",
        "587cf802f65125cad923a266",
        "6728af09afa3de00011a722e",
    ]
    assert (leads[0].first_name, leads[0].last_name, leads[0].email) == ("Marcus", None, None)
    assert leads[2].title is None and leads[0].title == "VP of Sales Operations"
    assert {r.company_name for r in leads} == {"Example Software", "Example Financial Corp."}
    assert leads[0].raw is not None and leads[0].raw["last_name_obfuscated"] == "El***y"
    # the match count is `total_entries` (no `pagination` in this shape)
    assert pages[-1].progress is not None and pages[-1].progress.total == 232764882
    # filters and paging went in the body, the key in `x-api-key`, never as a bearer token
    body = calls.bodies(SEARCH)[0]
    assert body == {"person_titles": ["vp of sales"], "page": 1, "per_page": 3}
    assert calls.requests[0].headers["x-api-key"] == KEY
    assert "authorization" not in calls.requests[0].headers


def test_older_search_shape_counts_from_pagination_and_drops_the_placeholder_email(
    replay: Callable[..., Replay],
) -> None:
    replay({SEARCH: [ok("mixed_people_search_legacy.json")]})
    pages = run(config(max_records=2))
    leads = [r for p in pages for r in p.records]
    assert pages[-1].progress is not None and pages[-1].progress.total == 4456
    assert len(leads) == 2 and all(r.email is None for r in leads)  # email_not_unlocked@
    assert all(r.raw and r.raw["email"] == "email_not_unlocked@domain.com" for r in leads)
    first = leads[0]
    assert (first.first_name, first.last_name, first.title) == (
        "Marcus",
        "Ellery",
        "VP of Sales Operations",
    )
    assert first.linkedin_url == "https://www.linkedin.com/in/marcus-ellery-4c2b81de"
    assert (first.company_name, first.company_domain) == ("Example Software", "example-software.io")
    assert (first.company_industry, first.company_size) == (
        "information technology & services",
        "1600",
    )
    assert (first.city, first.state, first.country) == (
        "San Francisco",
        "California",
        "United States",
    )


def test_bulk_match_answer_enriches_the_page_and_counts_credits_consumed(
    replay: Callable[..., Replay],
) -> None:
    # Given the documented search page and the documented bulk_match answer
    calls = replay({SEARCH: [ok("people_api_search.json")], BULK_MATCH: [ok("bulk_match.json")]})
    # When a job enriches the page
    pages = run(config(enrich=True))
    # Then only people with `has_email: true` were sent, by Apollo id, in `details[]`
    assert calls.bodies(BULK_MATCH) == [
        {"details": [{"id": "64a7ff0cc4dfae00013df1a5"}, {"id": "587cf802f65125cad923a266"}]}
    ]
    leads = {r.external_id: r for p in pages for r in p.records}
    marcus = leads["64a7ff0cc4dfae00013df1a5"]
    assert (marcus.email, marcus.last_name) == ("marcus.ellery@example-software.io", "Ellery")
    assert marcus.company_domain == "example-software.io" and marcus.company_size == "1600"
    assert leads["6728af09afa3de00011a722e"].email is None  # not worth a credit
    # the credits are what Apollo says it consumed, not a count of our own
    assert sum(p.credits_used for p in pages) == 3


@pytest.mark.parametrize(
    ("answer", "requested", "found", "credits"),
    [
        ("bulk_match_with_miss.json", 3, 2, 2),  # a miss as `null` in its place
        ("bulk_match.json", 4, 3, 3),  # a miss left out: 4 asked, 3 answered
    ],
    ids=["miss-as-null", "miss-left-out"],
)
def test_a_bulk_match_miss_is_read_either_way(
    replay: Callable[..., Replay], answer: str, requested: int, found: int, credits: int
) -> None:
    replay({BULK_MATCH: [ok(answer)]})
    people = [{"id": m["id"]} for m in fixture("bulk_match.json")["matches"]]
    people += [{"id": "000000000000000000000000"}][: requested - 3]
    session = _Session(config(), LocalRunContext())
    try:
        matched, spent = session.bulk_match(people[:requested])
    finally:
        session.close()
    assert len(matched) == found and spent == credits
    assert all(m["email"].endswith("@example-software.io") for m in matched.values())


def test_auth_health_is_the_test_connection(replay: Callable[..., Replay]) -> None:
    replay({HEALTH: [ok("auth_health.json")], SEARCH: [ok("people_api_search.json")]})
    result = ApolloConnector().check(config())
    assert result.ok and result.message == "232764882 people match"
    assert [r.external_id for r in result.sample][:1] == ["64a7ff0cc4dfae00013df1a5"]


def test_health_saying_not_logged_in_is_bad_credentials(replay: Callable[..., Replay]) -> None:
    replay({HEALTH: [httpx.Response(200, json={"healthy": True, "is_logged_in": False})]})
    assert ApolloConnector().check(config()).reason == "bad_credentials"


@pytest.mark.parametrize("body", ["error_401.txt", "error_401_api_key.txt"])
def test_both_documented_401_texts_are_bad_credentials(
    replay: Callable[..., Replay], body: str
) -> None:
    replay({HEALTH: [text(401, body)], SEARCH: [text(401, body)]})
    assert ApolloConnector().check(config()).reason == "bad_credentials"
    with pytest.raises(AuthError, match=re.escape(fixture(body).split(".")[0])):
        run(config())


def test_403_api_inaccessible_is_forbidden_with_apollos_reason(
    replay: Callable[..., Replay],
) -> None:
    replay({HEALTH: [ok("auth_health.json")], SEARCH: [error(403, "error_403.json")]})
    assert ApolloConnector().check(config()).reason == "forbidden"
    with pytest.raises(ForbiddenError, match="not authorized to access api/v1/mixed_people"):
        run(config())


def test_422_invalid_parameters_is_a_config_error(replay: Callable[..., Replay]) -> None:
    replay({SEARCH: [error(422, "error_422.json")]})
    with pytest.raises(ConfigError, match="Invalid parameters"):
        run(config())


@pytest.mark.parametrize("body", ["error_429.json", "error_429_nested.json"])
def test_both_documented_429_bodies_throttle_then_park(
    replay: Callable[..., Replay], body: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the clock pinned ten seconds into an hour: the hourly window ends in 3,590 s
    top_of_hour = 1_796_392_800.0  # 2026-12-04T14:00:00Z
    clock = SimpleNamespace(
        time=lambda: top_of_hour + 10, monotonic=time.monotonic, sleep=time.sleep
    )
    monkeypatch.setattr(http, "time", clock)
    # A 429 that says nothing about when is waited out (short backoff) and the search goes on
    calls = replay({SEARCH: [error(429, body), ok("people_api_search.json")]})
    assert len([r for p in run(config()) for r in p.records]) == 3
    assert [r.url.path for r in calls.requests] == [SEARCH, SEARCH]
    # one whose hourly window is used up parks the job until the next hour
    used_up = {"x-rate-limit-hourly": "600", "x-hourly-requests-left": "0"}
    calls.answers[SEARCH] = [error(429, body, **used_up)]
    with pytest.raises(RateLimited) as parked:
        run(config())
    assert parked.value.retry_after == 3590


# ---- the emulator answers in the documented shapes ---------------------------------------------


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively (a list by its first item); `null` fits any type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None if value is None else type(value).__name__


def assert_documented(got: Any, documented: Any, path: str = "$", *, exact: bool) -> None:
    """`got` has every documented field with the documented type (`exact`: and no other)."""
    if isinstance(documented, dict):
        assert isinstance(got, dict), f"{path}: {got!r} is not an object"
        missing = documented.keys() - got.keys()
        assert not missing, f"{path}: missing documented fields {sorted(missing)}"
        if exact:
            assert not got.keys() - documented.keys(), (
                f"{path}: undocumented {got.keys() - documented.keys()}"
            )
        for key, sub in documented.items():
            assert_documented(got[key], sub, f"{path}.{key}", exact=exact)
    elif isinstance(documented, list):
        assert isinstance(got, list), f"{path}: {got!r} is not a list"
        if documented and got:
            assert_documented(got[0], documented[0], f"{path}[0]", exact=exact)
    elif documented is not None and got is not None:
        assert got == documented, f"{path}: {got} where the documentation has {documented}"


@pytest.fixture
def emu() -> Iterator[ApolloEmulator]:
    with ApolloEmulator(people=300, seed=9, non_master_keys=("apollo-non-master-key",)) as emulator:
        yield emulator


def ask(
    emu: ApolloEmulator, method: str, path: str, key: str = KEY, **kwargs: Any
) -> httpx.Response:
    return httpx.request(method, emu.url + path, headers={"x-api-key": key}, timeout=10, **kwargs)


def test_emulator_search_is_the_documented_current_shape(emu: ApolloEmulator) -> None:
    got = ask(emu, "POST", SEARCH, json={"page": 1, "per_page": 3}).json()
    assert_documented(shape(got), shape(fixture("people_api_search.json")), exact=True)
    assert all(re.fullmatch(r".{2}\*\*\*.", p["last_name_obfuscated"]) for p in got["people"])


def test_emulator_older_search_is_the_documented_older_shape(emu: ApolloEmulator) -> None:
    got = ask(emu, "POST", LEGACY_SEARCH, json={"page": 2, "per_page": 2}).json()
    documented = fixture("mixed_people_search_legacy.json")
    assert_documented(shape(got), shape(documented), exact=False)
    assert got["pagination"] == {"page": 2, "per_page": 2, "total_entries": 300, "total_pages": 150}
    assert {p["email"] for p in got["people"]} == {"email_not_unlocked@domain.com"}


def test_emulator_bulk_match_is_the_documented_shape(emu: ApolloEmulator) -> None:
    ids = [emu.person_id(i) for i in range(3)]
    got = ask(emu, "POST", BULK_MATCH, json={"details": [{"id": i} for i in ids]}).json()
    documented = fixture("bulk_match.json")
    assert_documented(shape(got), shape(documented), exact=True)
    assert (got["total_requested_enrichments"], got["credits_consumed"]) == (3, 3)
    # a miss, in the emulator's reading: `null` in its place, counted as missing
    missed = ask(emu, "POST", BULK_MATCH, json={"details": [{"id": ids[0]}, {"id": "nobody"}]})
    body = missed.json()
    assert body["matches"][1] is None and (body["missing_records"], body["credits_consumed"]) == (
        1,
        1,
    )
    assert_documented(shape(body), shape(fixture("bulk_match_with_miss.json")), exact=False)


def test_emulator_people_match_is_the_documented_shape(emu: ApolloEmulator) -> None:
    got = ask(emu, "POST", MATCH, params={"id": emu.person_id(5)}).json()
    assert_documented(
        shape(got["person"]), shape(fixture("people_match.json")["person"]), exact=True
    )


def test_emulator_health_and_errors_are_the_documented_ones(emu: ApolloEmulator) -> None:
    assert ask(emu, "GET", HEALTH).json() == fixture("auth_health.json")
    unauthorized = ask(emu, "POST", SEARCH, key="wrong", json={})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"].startswith("text/plain")
    assert unauthorized.text == fixture("error_401.txt")
    forbidden = ask(emu, "POST", SEARCH, key="apollo-non-master-key", json={})
    assert (forbidden.status_code, forbidden.json()) == (403, fixture("error_403.json"))
    invalid = ask(emu, "POST", SEARCH, json={"per_page": 500})
    assert (invalid.status_code, invalid.json()) == (422, fixture("error_422.json"))
    emu.set_limits(hourly=1)
    ask(emu, "POST", SEARCH, json={})
    throttled = ask(emu, "POST", SEARCH, json={})
    assert throttled.status_code == 429 and throttled.json().keys() == {"message"}
    documented = fixture("error_429.json")["message"].replace("600", "1")
    assert throttled.json()["message"] == documented
    assert throttled.headers["x-hourly-requests-left"] == "0"
