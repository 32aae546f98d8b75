"""The provider emulators, checked with plain httpx: auth, pagination, caps, limits, faults."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.sandbox import __main__ as sandbox_main
from connectors.sandbox.apollo import ApolloEmulator
from connectors.sandbox.dataset import SIZE_RANGES, Dataset
from connectors.sandbox.generic import GenericEmulator
from connectors.sandbox.linkedin import LinkedInEmulator
from connectors.sandbox.restli import RestliSyntaxError, parse_query, parse_value
from connectors.sandbox.server import parse_rate
from connectors.sandbox.zoominfo import ZoomInfoEmulator

APOLLO_KEY = {"x-api-key": "apollo-test-key"}
SEARCH = "/api/v1/mixed_people/api_search"


def _apollo(emu: ApolloEmulator) -> httpx.Client:
    return httpx.Client(base_url=emu.url, headers=APOLLO_KEY, timeout=10)


# -- dataset ----------------------------------------------------------------------------------
def test_dataset_is_a_pure_function_of_seed_and_index() -> None:
    a, b, c = Dataset(1000, seed=1), Dataset(10, seed=1), Dataset(1000, seed=2)
    assert a.person(7) == b.person(7)
    assert [a.person(i).email for i in range(50)] != [c.person(i).email for i in range(50)]
    assert len({a.person(i).email for i in range(1000)}) == 1000


def test_dataset_selection_matches_brute_force() -> None:
    ds = Dataset(20_000, seed=3)
    sel = ds.select(employee_ranges=[(51, 100)], locations=["Texas", "germany"], titles=["manager"])
    brute = [
        i
        for i in range(ds.size)
        if 51 <= (p := ds.person(i)).company.employees <= 100
        and p.location.matches_any({"texas", "germany"})
        and "manager" in p.title.title.lower()
    ]
    assert sel.indices(0, len(sel)) == brute
    ds.size = 40_000  # selections follow the size (incremental sources grow)
    assert len(sel) > len(brute)


def test_parse_rate() -> None:
    assert parse_rate("100/min") == (100, 60.0)
    assert parse_rate("10/5s") == (10, 5.0)
    assert parse_rate("3/day") == (3, 86400.0)
    with pytest.raises(ValueError):
        parse_rate("ten/min")


# -- Apollo: auth -----------------------------------------------------------------------------
def test_apollo_health_and_bearer_is_refused(apollo_emulator: ApolloEmulator) -> None:
    url = apollo_emulator.url
    ok = httpx.get(f"{url}/api/v1/auth/health", headers=APOLLO_KEY)
    assert ok.json() == {"healthy": True, "is_logged_in": True}
    bad = httpx.get(f"{url}/api/v1/auth/health", headers={"x-api-key": "nope"})
    assert bad.json()["is_logged_in"] is False
    bearer = httpx.post(f"{url}{SEARCH}", headers={"Authorization": "Bearer apollo-test-key"})
    assert bearer.status_code == 401
    assert bearer.headers["content-type"].startswith("text/plain")
    assert bearer.text == "Invalid access credentials."


def test_apollo_non_master_key_is_forbidden(apollo_emulator: ApolloEmulator) -> None:
    r = httpx.post(
        f"{apollo_emulator.url}{SEARCH}", headers={"x-api-key": "apollo-non-master-key"}, json={}
    )
    assert r.status_code == 403
    assert r.json()["error_code"] == "API_INACCESSIBLE"


@pytest.mark.parametrize(
    "body",
    [
        {"per_page": 101},
        {"page": 0},
        {"page": "x"},
        {"organization_num_employees_ranges": ["ten"]},
        {"person_titles": [1]},
    ],
)
def test_apollo_invalid_parameters(
    apollo_emulator: ApolloEmulator, body: dict[str, object]
) -> None:
    with _apollo(apollo_emulator) as client:
        r = client.post(SEARCH, json=body)
    assert r.status_code == 422
    assert r.json() == {"error": "Invalid parameters"}


# -- Apollo: search, pagination, cap ------------------------------------------------------------
def test_apollo_pages_are_disjoint_and_body_equals_query(apollo_emulator: ApolloEmulator) -> None:
    with _apollo(apollo_emulator) as client:
        p1 = client.post(SEARCH, json={"page": 1, "per_page": 100, "person_locations": ["Texas"]})
        p2 = client.post(SEARCH, json={"page": 2, "per_page": 100, "person_locations": ["Texas"]})
        q1 = client.post(f"{SEARCH}?page=1&per_page=100&person_locations[]=Texas")
    ids1 = [p["id"] for p in p1.json()["people"]]
    ids2 = [p["id"] for p in p2.json()["people"]]
    assert len(ids1) == len(ids2) == 100
    assert not set(ids1) & set(ids2)
    assert q1.json() == p1.json()
    assert 0 < p1.json()["total_entries"] < 120_000
    person = p1.json()["people"][0]
    assert {"first_name", "last_name_obfuscated", "title", "has_email"} <= person.keys()
    assert "email" not in person and "name" in person["organization"]


def test_apollo_cap_past_500_pages_is_an_empty_page(apollo_emulator: ApolloEmulator) -> None:
    with _apollo(apollo_emulator) as client:
        last = client.post(SEARCH, json={"page": 500, "per_page": 100})
        past = client.post(SEARCH, json={"page": 501, "per_page": 100})
    assert len(last.json()["people"]) == 100
    assert past.json() == {"total_entries": 120_000, "people": []}


def test_apollo_120k_partitions_by_size_then_location(apollo_emulator: ApolloEmulator) -> None:
    # Given the 120,000-person default dataset and Apollo's 50,000-record cap
    ranges = [f"{lo},{hi or ''}" for lo, hi in SIZE_RANGES]
    with _apollo(apollo_emulator) as client:

        def total(**filters: object) -> int:
            r = client.post(SEARCH, json={"per_page": 1, **filters})
            return int(r.json()["total_entries"])

        # When the search is split by headcount range
        by_range = {r: total(organization_num_employees_ranges=[r]) for r in ranges}
        assert sum(by_range.values()) == 120_000
        too_big = [r for r, n in by_range.items() if n > 50_000]
        # Then one range is still over the cap, and splitting it by location fixes that
        assert len(too_big) == 1
        countries = ["United States", "United Kingdom", "Germany", "France", "Canada"]
        parts = [
            total(organization_num_employees_ranges=too_big, person_locations=[c])
            for c in countries
        ]
    assert all(n <= 50_000 for n in parts)
    assert sum(parts) < by_range[too_big[0]]  # other countries remain, each far below the cap


def test_apollo_legacy_shape_has_pagination_and_placeholder_email(
    apollo_emulator: ApolloEmulator,
) -> None:
    apollo_emulator.legacy_shape = True
    with _apollo(apollo_emulator) as client:
        body = client.post(SEARCH, json={"page": 3, "per_page": 7}).json()
    assert body["pagination"] == {
        "page": 3,
        "per_page": 7,
        "total_entries": 120_000,
        "total_pages": 17_143,
    }
    person = body["people"][0]
    assert person["email"] == "email_not_unlocked@domain.com"
    assert person["organization"]["primary_domain"] in person["organization"]["website_url"]


def test_apollo_bulk_match_reveals_emails_and_counts_credits(
    apollo_emulator: ApolloEmulator,
) -> None:
    with _apollo(apollo_emulator) as client:
        ids = [p["id"] for p in client.post(SEARCH, json={"per_page": 3}).json()["people"]]
        details = [{"id": i} for i in ids] + [{"id": "ffffff000000000000000000"}]
        r = client.post("/api/v1/people/bulk_match", json={"details": details})
        too_many = client.post("/api/v1/people/bulk_match", json={"details": [{"id": ids[0]}] * 11})
    body = r.json()
    assert [m["id"] for m in body["matches"][:3]] == ids
    assert body["matches"][3] is None
    assert all("@" in m["email"] and "not_unlocked" not in m["email"] for m in body["matches"][:3])
    assert body["credits_consumed"] == 3 and apollo_emulator.credits_used == 3
    assert too_many.status_code == 422


# -- Apollo: rate limits ----------------------------------------------------------------------
def test_apollo_minute_limit_headers_429_and_violations(apollo_emulator: ApolloEmulator) -> None:
    apollo_emulator.set_limits(minute=3)
    with _apollo(apollo_emulator) as client:
        first = client.post(SEARCH, json={})
        client.post(SEARCH, json={})
        client.post(SEARCH, json={})
        over = client.post(SEARCH, json={})
        apollo_emulator.clock.advance(60)
        after = client.post(SEARCH, json={})
    assert first.headers["x-rate-limit-minute"] == "3"
    assert first.headers["x-minute-usage"] == "1"
    assert first.headers["x-minute-requests-left"] == "2"
    assert "x-24-hour-requests-left" in first.headers and "x-hourly-usage" in first.headers
    assert over.status_code == 429
    assert "message" in over.json() and 1 <= int(over.headers["Retry-After"]) <= 60
    assert after.status_code == 200
    assert apollo_emulator.violations == 1


def test_sliding_rate_limit_counts_violations(apollo_emulator: ApolloEmulator) -> None:
    apollo_emulator.set_rate_limit(2, 10.0)
    with _apollo(apollo_emulator) as client:
        codes = [client.post(SEARCH, json={}).status_code for _ in range(5)]
        apollo_emulator.clock.advance(10)
        codes.append(client.post(SEARCH, json={}).status_code)
    assert codes == [200, 200, 429, 429, 429, 200]
    assert apollo_emulator.violations == 3
    assert apollo_emulator.stats.by_status[429] == 3


# -- faults (through Apollo) ------------------------------------------------------------------
def test_fault_throttle_every_nth_request(apollo_emulator: ApolloEmulator) -> None:
    apollo_emulator.faults.throttle_every(3, retry_after=2)
    with _apollo(apollo_emulator) as client:
        rs = [client.post(SEARCH, json={}) for _ in range(6)]
    assert [r.status_code for r in rs] == [200, 200, 429, 200, 200, 429]
    assert rs[2].headers["Retry-After"] == "2"
    assert apollo_emulator.violations == 0  # injected 429s are not client violations
    assert apollo_emulator.faults.injected["throttle"] == 2


def test_fault_throttle_for_a_span(apollo_emulator: ApolloEmulator) -> None:
    apollo_emulator.faults.throttle_for(30)
    with _apollo(apollo_emulator) as client:
        during = client.post(SEARCH, json={})
        apollo_emulator.clock.advance(31)
        later = client.post(SEARCH, json={})
    assert during.status_code == 429 and 29 <= int(during.headers["Retry-After"]) <= 30
    assert later.status_code == 200


def test_fault_error_burst(apollo_emulator: ApolloEmulator) -> None:
    apollo_emulator.faults.error_burst(502, count=2, after=1)
    with _apollo(apollo_emulator) as client:
        codes = [client.post(SEARCH, json={}).status_code for _ in range(4)]
    assert codes == [200, 502, 502, 200]


def test_fault_latency(apollo_emulator: ApolloEmulator) -> None:
    apollo_emulator.faults.latency_ms = 150
    with _apollo(apollo_emulator) as client:
        started = time.perf_counter()
        client.get("/api/v1/auth/health")
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.15


def test_page_faults_malformed_truncated_empty(apollo_emulator: ApolloEmulator) -> None:
    faults = apollo_emulator.faults
    faults.malformed_page(2)
    faults.truncate_page(3, keep=40)
    faults.empty_page(4)
    with _apollo(apollo_emulator) as client:

        def page(n: int) -> httpx.Response:
            return client.post(SEARCH, json={"page": n, "per_page": 100})

        malformed, retried = page(2), page(2)
        truncated, empty, healthy = page(3), page(4), page(5)
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()
    assert len(retried.json()["people"]) == 100  # fires once by default
    assert len(truncated.json()["people"]) == 40
    assert empty.json() == {"total_entries": 120_000, "people": []}
    assert len(healthy.json()["people"]) == 100
    assert faults.injected["malformed"] == faults.injected["truncate"] == 1


def test_stop_closes_idle_keep_alive_connections() -> None:
    emu = ApolloEmulator(people=10).start()
    client = _apollo(emu)
    assert client.get("/api/v1/auth/health").status_code == 200
    started = time.perf_counter()
    emu.stop()
    assert time.perf_counter() - started < 2
    with pytest.raises(httpx.TransportError):
        client.get("/api/v1/auth/health")
    client.close()


# -- ZoomInfo ---------------------------------------------------------------------------------
ZI_CREDS = {"username": "zoominfo-user", "password": "zoominfo-pass"}


def _zoominfo(emu: ZoomInfoEmulator) -> httpx.Client:
    token = httpx.post(f"{emu.url}/authenticate", json=ZI_CREDS).json()["jwt"]
    return httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_zoominfo_authenticate_json_form_and_bad_password(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    url = zoominfo_emulator.url
    ok = httpx.post(f"{url}/authenticate", json=ZI_CREDS)
    zoominfo_emulator.clock.advance(1.1)  # authenticate allows 1 request per second
    form = httpx.post(f"{url}/authenticate", data=ZI_CREDS)
    zoominfo_emulator.clock.advance(1.1)
    bad = httpx.post(f"{url}/authenticate", json={**ZI_CREDS, "password": "x"})
    assert ok.status_code == form.status_code == 200 and ok.json()["jwt"].count(".") == 2
    assert bad.status_code == 401
    assert bad.json() == {"success": False, "statusCode": 401, "error": "Authentication failed"}


def test_zoominfo_tokens_live_by_the_emulated_clock(zoominfo_emulator: ZoomInfoEmulator) -> None:
    emu = zoominfo_emulator
    body = {"rpp": 1, "page": 1}
    old = emu.issue_token()
    emu.clock.advance(1800)  # half an hour on: a token issued now is valid at once
    fresh = emu.issue_token()
    for token in (old, fresh):
        got = httpx.post(f"{emu.url}/search/contact", json=body,
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert got.status_code == 200, got.text
    emu.clock.advance(1800)  # the first token's hour is over, not the second's
    expired = httpx.post(f"{emu.url}/search/contact", json=body,
                         headers={"Authorization": f"Bearer {old}"})  # fmt: skip
    assert expired.status_code == 401
    valid = httpx.post(f"{emu.url}/search/contact", json=body,
                       headers={"Authorization": f"Bearer {fresh}"})  # fmt: skip
    assert valid.status_code == 200


def test_zoominfo_authenticate_is_limited_to_one_per_second(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    url = zoominfo_emulator.url
    first = httpx.post(f"{url}/authenticate", json=ZI_CREDS)
    second = httpx.post(f"{url}/authenticate", json=ZI_CREDS)
    assert (first.status_code, second.status_code) == (200, 429)
    assert zoominfo_emulator.windows["authenticate"].violations == 1


def test_zoominfo_pki_jwt_is_verified_against_the_public_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"client_id": "zoominfo-client", "username": "zoominfo-user", "iat": 1}
    signed = pyjwt.encode(claims, key, algorithm="RS256")
    other = pyjwt.encode(
        claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256"
    )
    with ZoomInfoEmulator(people=10, public_key=public) as emu:
        good = httpx.post(f"{emu.url}/authenticate", headers={"Authorization": f"Bearer {signed}"})
        emu.clock.advance(1.1)
        forged = httpx.post(f"{emu.url}/authenticate", headers={"Authorization": f"Bearer {other}"})
    assert good.status_code == 200 and "jwt" in good.json()
    assert forged.status_code == 401


def test_zoominfo_expired_and_revoked_jwt(zoominfo_emulator: ZoomInfoEmulator) -> None:
    zoominfo_emulator.token_ttl_s = 5
    with _zoominfo(zoominfo_emulator) as client:
        fresh = client.post("/search/contact", json={"rpp": 1})
        zoominfo_emulator.clock.advance(6)
        expired = client.post("/search/contact", json={"rpp": 1})
        client.headers["Authorization"] = f"Bearer {zoominfo_emulator.issue_token()}"
        zoominfo_emulator.faults.expire_tokens()
        revoked = client.post("/search/contact", json={"rpp": 1})
    assert fresh.status_code == 200
    assert expired.status_code == revoked.status_code == 401
    assert expired.json()["error"] == "Authentication failed"


def test_zoominfo_search_pagination_limits_and_shape(zoominfo_emulator: ZoomInfoEmulator) -> None:
    with _zoominfo(zoominfo_emulator) as client:
        page = client.post("/search/contact", json={"rpp": 100, "page": 10, "country": "Germany"})
        past = client.post("/search/contact", json={"rpp": 100, "page": 11})
        big = client.post("/search/contact", json={"rpp": 101})
        broken = client.post(
            "/search/contact", content=b"{nope", headers={"Content-Type": "application/json"}
        )
    body = page.json()
    # as documented: maxResults = matches, totalResults = records on this page
    assert body["totalResults"] == 100 and body["currentPage"] == 10
    assert 1000 < body["maxResults"] < 120_000 and len(body["data"]) == 100
    contact = body["data"][0]
    assert {"id", "firstName", "lastName", "jobTitle", "contactAccuracyScore", "hasEmail"} <= set(
        contact
    )
    assert set(contact["company"]) == {"id", "name"} and "email" not in contact
    assert past.status_code == big.status_code == broken.status_code == 400
    assert past.json()["statusCode"] == 400 and "1000" in past.json()["error"]
    assert page.headers["X-RateLimit-Limit"] == "1500"
    assert int(page.headers["X-RateLimit-Reset"]) > time.time()


def test_zoominfo_partition_fields_split_the_population(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    with _zoominfo(zoominfo_emulator) as client:

        def total(**filters: object) -> int:
            return int(
                client.post("/search/contact", json={"rpp": 1, **filters}).json()["maxResults"]
            )

        small = total(employeeRangeMin=1, employeeRangeMax=50)
        large = total(employeeRangeMin=51)
        managers = total(managementLevel="Manager")
    assert small + large == 120_000
    assert 0 < managers < 120_000


def test_zoominfo_enrich_needs_output_fields_and_counts_records(
    zoominfo_emulator: ZoomInfoEmulator,
) -> None:
    with _zoominfo(zoominfo_emulator) as client:
        ids = [c["id"] for c in client.post("/search/contact", json={"rpp": 2}).json()["data"]]
        inputs = [{"personId": i} for i in ids] + [{"personId": 1}]
        missing = client.post("/enrich/contact", json={"matchPersonInput": inputs})
        ok = client.post(
            "/enrich/contact",
            json={"matchPersonInput": inputs, "outputFields": ["id", "email", "firstName"]},
        )
    assert missing.status_code == 400 and missing.json()["success"] is False
    result = ok.json()["data"]["result"]
    assert ok.json()["success"] is True
    assert [r["matchStatus"] for r in result] == ["FULL_MATCH", "FULL_MATCH", "NO_MATCH"]
    assert result[0]["data"][0]["id"] == ids[0] and "@" in result[0]["data"][0]["email"]
    assert zoominfo_emulator.records_used == 2
    assert ok.headers["X-Usage-Record-Limit-Remaining"] == str(1_000_000 - 2)


def test_zoominfo_rate_limit_answers_429_with_envelope(zoominfo_emulator: ZoomInfoEmulator) -> None:
    zoominfo_emulator.set_rate_limit(2, 60.0)
    with _zoominfo(zoominfo_emulator) as client:
        codes = [client.post("/search/contact", json={"rpp": 1}).status_code for _ in range(3)]
        last = client.post("/search/contact", json={"rpp": 1})
    assert codes == [200, 200, 429]
    assert last.json()["statusCode"] == 429 and int(last.headers["Retry-After"]) >= 1
    assert last.headers["X-RateLimit-Remaining"] == "0"
    assert zoominfo_emulator.violations == 2


# -- LinkedIn ---------------------------------------------------------------------------------
LI_HEADERS = {
    "Authorization": "Bearer linkedin-test-token",
    "LinkedIn-Version": "202506",
    "X-Restli-Protocol-Version": "2.0.0",
}
OWNER = "owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A123)&leadType=(leadType:SPONSORED)"


def _leads(
    emu: LinkedInEmulator, query: str = "", headers: dict[str, str] | None = None
) -> httpx.Response:
    url = f"{emu.url}/rest/leadFormResponses?q=owner&{OWNER}{query}"
    return httpx.get(url, headers=headers if headers is not None else LI_HEADERS)


def test_restli_parser() -> None:
    assert parse_value("(a:List(1,(b:x%2Cy)),c:)") == {"a": ["1", {"b": "x,y"}], "c": ""}
    assert parse_query("q=owner&x=List()") == {"q": ["owner"], "x": [[]]}
    for bad in ("(a:1", "(a:1))", "(a 1)", "(:1)", "(a:1,a:2)", "%zz", "List(1,"):
        with pytest.raises(RestliSyntaxError):
            parse_value(bad)


def test_linkedin_leads_page_shape_and_order(linkedin_emulator: LinkedInEmulator) -> None:
    first = _leads(linkedin_emulator, "&start=0&count=10").json()
    last = _leads(linkedin_emulator, "&start=990&count=100").json()
    assert first["paging"] == {"start": 0, "count": 10, "total": 1000, "links": []}
    assert len(first["elements"]) == 10 and len(last["elements"]) == 10
    times = [e["submittedAt"] for e in first["elements"] + last["elements"]]
    assert times == sorted(times)
    lead = first["elements"][0]
    # The element names its form but does not carry it: the questions are at /rest/leadForms/{id}
    assert "form" not in lead
    form_id = lead["versionedLeadGenFormUrn"].split("leadGenForm:")[1].split(",")[0]
    form = httpx.get(f"{linkedin_emulator.url}/rest/leadForms/{form_id}", headers=LI_HEADERS)
    questions = {q["questionId"]: q for q in form.json()["content"]["questions"]}
    answers = {
        questions[a["questionId"]].get("predefinedField"): a["answerDetails"]["textQuestionAnswer"][
            "answer"
        ]
        for a in lead["formResponse"]["answers"]
    }
    assert "@" in answers["EMAIL"] and answers["FIRST_NAME"] and answers["COMPANY_NAME"]
    assert lead["testLead"] is False and "leadGenForm" in lead["versionedLeadGenFormUrn"]


def test_linkedin_incremental_sync_by_submitted_at(linkedin_emulator: LinkedInEmulator) -> None:
    # Given a back-fill that saw every lead up to the newest submittedAt
    newest = _leads(linkedin_emulator, "&start=990&count=10").json()["elements"][-1]["submittedAt"]
    # When new leads arrive later
    linkedin_emulator.clock.advance(3600)
    added = linkedin_emulator.add_leads(3)
    # Then a range starting after the newest seen lead returns exactly them
    since = f"&submittedAtTimeRange=(start:{newest + 1},end:{added[-1] + 1})"
    page = _leads(linkedin_emulator, since).json()
    assert [e["submittedAt"] for e in page["elements"]] == added
    assert page["paging"]["total"] == 3


def test_linkedin_tokens_invalid_expired_and_refreshed(linkedin_emulator: LinkedInEmulator) -> None:
    bad = _leads(linkedin_emulator, headers={**LI_HEADERS, "Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json()["serviceErrorCode"] == 65600 and bad.json()["code"] == "INVALID_ACCESS_TOKEN"
    linkedin_emulator.faults.expire_tokens()
    expired = _leads(linkedin_emulator)
    refreshed = httpx.post(
        f"{linkedin_emulator.url}/oauth/v2/accessToken",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "linkedin-refresh-token",
            "client_id": "linkedin-client-id",
            "client_secret": "linkedin-client-secret",
        },
    ).json()["access_token"]
    again = _leads(
        linkedin_emulator, headers={**LI_HEADERS, "Authorization": f"Bearer {refreshed}"}
    )
    assert expired.status_code == 401 and expired.json()["code"] == "EXPIRED_ACCESS_TOKEN"
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"LinkedIn-Version": "202301"}, 426, "NONEXISTENT_VERSION"),
        ({"LinkedIn-Version": ""}, 400, "VERSION_MISSING"),
        ({"X-Restli-Protocol-Version": "1.0.0"}, 400, "ILLEGAL_ARGUMENT"),
    ],
)
def test_linkedin_version_headers(
    linkedin_emulator: LinkedInEmulator, headers: dict[str, str], status: int, code: str
) -> None:
    r = _leads(linkedin_emulator, headers={**LI_HEADERS, **headers})
    assert r.status_code == status and r.json()["code"] == code


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("owner=%28sponsoredAccount%3Aurn%3Ali%3AsponsoredAccount%3A123%29", 400),
        ("owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A123", 400),
        ("owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A999)", 403),
        ("owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A123)&count=0", 400),
    ],
)
def test_linkedin_rejects_malformed_restli(
    linkedin_emulator: LinkedInEmulator, query: str, status: int
) -> None:
    base = f"{linkedin_emulator.url}/rest/leadFormResponses"
    url = f"{base}?q=owner&leadType=(leadType:SPONSORED)&{query}"
    assert httpx.get(url, headers=LI_HEADERS).status_code == status


@pytest.mark.parametrize("linkedin_emulator", [{"daily_limit": 2, "leads": 5}], indirect=True)
def test_linkedin_daily_limit_429_without_headers(linkedin_emulator: LinkedInEmulator) -> None:
    codes = [_leads(linkedin_emulator).status_code for _ in range(2)]
    over = _leads(linkedin_emulator)
    linkedin_emulator.clock.advance(86_400)
    tomorrow = _leads(linkedin_emulator)
    assert codes == [200, 200] and over.status_code == 429
    assert "retry-after" not in over.headers
    assert not [h for h in over.headers if "limit" in h.lower()]
    assert tomorrow.status_code == 200
    assert linkedin_emulator.violations == 1


# -- generic REST API -------------------------------------------------------------------------
GENERIC_AUTH = {"Authorization": "Bearer generic-test-token"}


def _walk(emu: GenericEmulator, **params: str) -> tuple[list[str], int]:
    """Follow the emulator's pagination style to the end: (record ids, requests made)."""
    ids: list[str] = []
    requests = 0
    url: str | None = f"{emu.url}/v1/contacts"
    query: dict[str, str] | None = dict(params)
    page, offset = 1, 0
    with httpx.Client(headers=GENERIC_AUTH, timeout=10) as client:
        while url is not None and requests < 50:  # a broken paginator must not loop forever
            r = client.get(url, params=query)
            requests += 1
            r.raise_for_status()
            body = r.json()
            items = body["data"]["items"]
            ids += [item["id"] for item in items]
            if emu.pagination == "link":
                url = r.links.get("next", {}).get("url")
                query = None  # the next link carries the whole query
            elif emu.pagination == "cursor":
                token = body["meta"]["next_cursor"]
                url = url if token else None
                query = {"limit": params.get("limit", "20"), "cursor": token or ""}
            elif emu.pagination == "offset":
                offset += len(items)
                url = url if len(items) == int(params.get("limit", "20")) else None
                query = {**params, "offset": str(offset)}
            else:
                page += 1
                url = url if len(items) == int(params.get("size", "20")) else None
                query = {**params, "page": str(page)}
    return ids, requests


@pytest.mark.parametrize(
    ("style", "params"),
    [
        ("page", {"size": "100"}),
        ("offset", {"limit": "100"}),
        ("cursor", {"limit": "100"}),
        ("link", {"size": "100"}),
    ],
)
@pytest.mark.parametrize("generic_emulator", [{"records": 250}], indirect=True)
def test_generic_pagination_styles_visit_every_record_once(
    generic_emulator: GenericEmulator, style: str, params: dict[str, str]
) -> None:
    generic_emulator.pagination = style  # type: ignore[assignment]
    ids, requests = _walk(generic_emulator, **params)
    assert ids == [f"c_{i}" for i in range(250)]
    assert requests == 3


@pytest.mark.parametrize(
    ("auth", "good", "bad"),
    [
        ("bearer", {"headers": GENERIC_AUTH}, {"headers": {"Authorization": "Bearer x"}}),
        ("api_key_header", {"headers": {"X-API-Key": "generic-test-token"}}, {}),
        ("api_key_query", {"params": {"api_key": "generic-test-token"}}, {"headers": GENERIC_AUTH}),
        ("basic", {"auth": ("generic-user", "generic-pass")}, {"auth": ("generic-user", "x")}),
    ],
)
def test_generic_auth_styles(
    generic_emulator: GenericEmulator, auth: str, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    generic_emulator.auth = auth  # type: ignore[assignment]
    url = f"{generic_emulator.url}/v1/contacts"
    assert httpx.get(url, **good).status_code == 200
    denied = httpx.get(url, **bad)
    assert denied.status_code == 401 and denied.json() == {"error": "unauthorized"}


def test_generic_auth_none_needs_nothing(generic_emulator: GenericEmulator) -> None:
    generic_emulator.auth = "none"
    assert httpx.get(f"{generic_emulator.url}/v1/contacts").status_code == 200


def test_generic_updated_since_and_new_records(generic_emulator: GenericEmulator) -> None:
    url = f"{generic_emulator.url}/v1/contacts"
    everything = httpx.get(url, headers=GENERIC_AUTH, params={"size": "100", "page": "10"}).json()
    newest = everything["data"]["items"][-1]
    assert newest["id"] == "c_999"
    generic_emulator.add_records(2)
    since = {"updated_since": newest["updated_at"], "size": "100"}
    recent = httpx.get(url, headers=GENERIC_AUTH, params=since).json()
    assert [r["id"] for r in recent["data"]["items"]] == ["c_999", "c_1000", "c_1001"]
    assert recent["meta"]["total"] == 3
    bad = httpx.get(url, headers=GENERIC_AUTH, params={"updated_since": "yesterday"})
    assert bad.status_code == 400


def test_generic_records_path_size_cap_and_bad_cursor(generic_emulator: GenericEmulator) -> None:
    generic_emulator.records_path = "results"
    url = f"{generic_emulator.url}/v1/contacts"
    body = httpx.get(url, headers=GENERIC_AUTH, params={"size": "5"}).json()
    assert len(body["results"]) == 5 and body["results"][0]["company"]["domain"]
    too_big = httpx.get(url, headers=GENERIC_AUTH, params={"size": "101"})
    generic_emulator.pagination = "cursor"
    bad_cursor = httpx.get(url, headers=GENERIC_AUTH, params={"cursor": "!!!"})
    assert too_big.status_code == bad_cursor.status_code == 400


def test_generic_429_carries_retry_after(generic_emulator: GenericEmulator) -> None:
    generic_emulator.set_rate_limit(1, 30.0)
    url = f"{generic_emulator.url}/v1/contacts"
    first = httpx.get(url, headers=GENERIC_AUTH)
    second = httpx.get(url, headers=GENERIC_AUTH)
    assert first.status_code == 200 and second.status_code == 429
    assert 1 <= int(second.headers["Retry-After"]) <= 30
    assert generic_emulator.violations == 1


# -- shared machinery -------------------------------------------------------------------------
def test_injected_401_uses_the_provider_shape(apollo_emulator: ApolloEmulator) -> None:
    apollo_emulator.faults.error_burst(401, count=1)
    with _apollo(apollo_emulator) as client:
        revoked = client.post(SEARCH, json={})
        healed = client.post(SEARCH, json={})
    assert revoked.status_code == 401 and revoked.text == "Invalid access credentials."
    assert healed.status_code == 200


def test_request_log_and_peak_concurrency(apollo_emulator: ApolloEmulator) -> None:
    apollo_emulator.faults.latency_ms = 300
    barrier = threading.Barrier(4)

    def call() -> None:
        barrier.wait()
        with _apollo(apollo_emulator) as client:
            client.post(SEARCH, json={"person_titles": ["CTO"], "per_page": 1})

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = apollo_emulator.stats
    assert stats.requests == 4 and stats.in_flight == 0
    assert stats.peak_in_flight >= 2
    logged = stats.requests_to(SEARCH)
    assert len(logged) == 4 and b"CTO" in logged[0].body
    assert logged[0].headers["x-api-key"] == "apollo-test-key"


def test_command_line_builds_each_emulator() -> None:
    args = sandbox_main._parser().parse_args(
        ["generic", "--pagination", "cursor", "--rate-limit", "5/s", "--records", "7"]
    )
    emu = sandbox_main.build("generic", args, 0)
    assert isinstance(emu, GenericEmulator)
    assert emu.pagination == "cursor" and emu.dataset.size == 7
    assert emu.windows["default"].limit == 5
    apollo = ApolloEmulator(people=1, rate_limit="200/min")
    assert apollo.windows["minute"].limit == 200 and "default" not in apollo.windows
    kinds = {type(sandbox_main.build(n, args, 0)) for n in sandbox_main.NAMES}
    assert kinds == {ApolloEmulator, ZoomInfoEmulator, LinkedInEmulator, GenericEmulator}
