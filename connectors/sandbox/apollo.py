"""Apollo.io emulator: people search with its caps, enrichment, health and rate-limit headers.

Routes (base `emu.url`):

* `POST /api/v1/mixed_people/api_search` filters as JSON body and/or query (`person_titles[]`,
  `person_locations[]`, `person_seniorities[]`, `organization_locations[]`,
  `q_organization_domains_list[]`, `organization_num_employees_ranges[]` like `"1,10"` or
  `"10001,"`, `q_keywords`; `page` from 1, `per_page` 1..100). Answers `{"total_entries",
  "people": [...]}` with obfuscated people, or the older full shape with `pagination` when
  `emu.legacy_shape` is true. `POST /api/v1/mixed_people/search` always answers the older shape.
* `POST /api/v1/people/bulk_match` `details[]` (1..10; match by `id`, `email` or
  `linkedin_url`) and `POST /api/v1/people/match` (one): full people with `email`; every
  matched person costs one credit (`emu.credits_used`).
* `GET /api/v1/auth/health` -> `{"healthy": true, "is_logged_in": <key valid>}`.

Shapes are Apollo's documented examples (`tests/connectors/fixtures/apollo/`, checked by
`tests/connectors/test_apollo_contract.py`): the enriched person carries exactly the top-level
fields of the Bulk People Enrichment example (phones come only by webhook, so none here); 401 is
`text/plain` `Invalid access credentials.`, 403 `{"error": "This API key is not authorized to
access api/v1/...", "error_code": "API_INACCESSIBLE"}`, 422 `{"error": "Invalid parameters"}`, 429
`{"message": "The maximum number of api calls allowed for api/v1/... is N times per minute. ..."}`.

Choices (PROVIDERS.md leaves them open): a `bulk_match` detail that matches no one answers `null`
in its place in `matches` (the documented example has no miss); past 500 pages or 50,000 records a
search answers an empty `people` list with the true `total_entries`; `total_pages` is not capped;
`per_page` over 100, `page` < 1, non-integers, malformed ranges or a non-JSON body -> 422 `Invalid
parameters`; the legacy `api_key` body field is not accepted (401). Rate limits are fixed windows
per minute, hour and day shared by every endpoint except health (real Apollo counts per endpoint; a
shared budget is stricter) and default to effectively unlimited so benchmarks are not throttled;
set them with `set_limits` (or `rate_limit="200/min"`; other periods add a sliding window). Over a
limit: 429 `{"message": ...}` with `Retry-After` (seconds to the window's end), counted in
`violations`.
"""

from __future__ import annotations

import time
from typing import Any

from connectors.sandbox.dataset import (
    Company,
    Dataset,
    Person,
    index_from_email,
    index_from_linkedin,
)
from connectors.sandbox.server import (
    Emulator,
    Reject,
    Request,
    Response,
    Window,
    apply_page_fault,
    json_response,
    malformed_response,
    parse_rate,
)

API = "/api/v1"
SEARCH = f"{API}/mixed_people/api_search"
LEGACY_SEARCH = f"{API}/mixed_people/search"
BULK_MATCH = f"{API}/people/bulk_match"
MATCH = f"{API}/people/match"
HEALTH = f"{API}/auth/health"
PLACEHOLDER_EMAIL = "email_not_unlocked@domain.com"
_LIST_FILTERS = {
    "person_titles": "titles",
    "person_locations": "locations",
    "person_seniorities": "seniorities",
    "organization_locations": "company_locations",
    "q_organization_domains_list": "domains",
}
_WINDOWS = (("minute", 60.0), ("hourly", 3600.0), ("24-hour", 86400.0))


def _invalid() -> Reject:
    return Reject(json_response(422, {"error": "Invalid parameters"}))


class ApolloEmulator(Emulator):
    name = "apollo"

    def __init__(
        self,
        *,
        people: int = 120_000,
        seed: int = 0,
        api_key: str = "apollo-test-key",
        non_master_keys: tuple[str, ...] = ("apollo-non-master-key",),
        legacy_shape: bool = False,
        minute_limit: int = 1_000_000,
        hourly_limit: int = 10_000_000,
        daily_limit: int = 100_000_000,
        max_pages: int = 500,
        max_records: int = 50_000,
        port: int = 0,
        latency_ms: float = 0.0,
        rate_limit: tuple[int, float] | str | None = None,
    ) -> None:
        # a per-minute/hour/day --rate-limit becomes that fixed window (and its headers)
        rate = parse_rate(rate_limit) if isinstance(rate_limit, str) else rate_limit
        if rate is not None and rate[1] in (60.0, 3600.0, 86400.0):
            minute_limit = rate[0] if rate[1] == 60.0 else minute_limit
            hourly_limit = rate[0] if rate[1] == 3600.0 else hourly_limit
            daily_limit = rate[0] if rate[1] == 86400.0 else daily_limit
            rate = None
        super().__init__(port=port, latency_ms=latency_ms, rate_limit=rate)
        self.dataset = Dataset(people, seed)
        self.api_keys = {api_key, *non_master_keys}
        self.non_master_keys = set(non_master_keys)
        self.legacy_shape = legacy_shape
        self.max_pages = max_pages
        self.max_records = max_records
        self.credits_used = 0
        self._id_prefix = f"{seed & 0xFFFFFF:06x}"
        self.set_limits(minute=minute_limit, hourly=hourly_limit, daily=daily_limit)
        self.routes.update(
            {
                ("POST", SEARCH): self._search,
                ("POST", LEGACY_SEARCH): self._legacy_search,
                ("POST", BULK_MATCH): self._bulk_match,
                ("POST", MATCH): self._match,
                ("GET", HEALTH): self._health,
            }
        )

    def set_limits(
        self, *, minute: int | None = None, hourly: int | None = None, daily: int | None = None
    ) -> None:
        """Replace the fixed per-minute / hourly / 24-hour windows that are given."""
        for (name, period), limit in zip(_WINDOWS, (minute, hourly, daily), strict=True):
            if limit is not None:
                with self._lock:
                    self.windows[name] = Window(name, limit, period, fixed=True)

    # -- pipeline hooks ---------------------------------------------------------------------
    def window_applies(self, window: Window, req: Request) -> bool:
        return req.path != HEALTH and super().window_applies(window, req)

    def throttled(self, req: Request, retry_after: float, window: Window | None) -> Response:
        per = {"minute": "minute", "hourly": "hour", "24-hour": "day"}.get(
            window.name if window else "", "period"
        )
        limit = window.limit if window else 0
        message = (
            f"The maximum number of api calls allowed for {req.path.lstrip('/')} is {limit} "
            f"times per {per}. Please upgrade your plan from https://app.apollo.io/#/settings/plans/upgrade."
        )
        return json_response(429, {"message": message}, {"Retry-After": str(int(retry_after))})

    def failure(self, req: Request, status: int, message: str) -> Response:
        """Injected or routing errors, in the shape Apollo uses for that status."""
        if status == 401:
            return Response(401, b"Invalid access credentials.", {"Content-Type": "text/plain"})
        if status == 403:
            return json_response(403, {"error": message, "error_code": "API_INACCESSIBLE"})
        if status == 422:
            return json_response(422, {"error": "Invalid parameters"})
        return json_response(status, {"error": message})

    def decorate(self, req: Request, response: Response) -> None:
        if req.path == HEALTH:
            return
        now = self.clock.now()
        with self._lock:
            for name, _ in _WINDOWS:
                window = self.windows.get(name)
                if window is None:
                    continue
                usage = window.usage(now)
                limit_key = f"x-rate-limit-{name}"
                response.headers[limit_key] = str(window.limit)
                response.headers[f"x-{name}-usage"] = str(usage)
                response.headers[f"x-{name}-requests-left"] = str(max(0, window.limit - usage))

    # -- auth -------------------------------------------------------------------------------
    def _auth(self, req: Request, *, master: bool = True) -> None:
        key = req.header("x-api-key")
        if key is None or key not in self.api_keys:
            raise Reject(
                Response(401, b"Invalid access credentials.", {"Content-Type": "text/plain"})
            )
        if master and key in self.non_master_keys:
            message = (
                f"This API key is not authorized to access {req.path.lstrip('/')}. Request an API "
                "key from your administrator that includes this endpoint in its configured scope."
            )
            raise Reject(json_response(403, {"error": message, "error_code": "API_INACCESSIBLE"}))

    # -- routes -----------------------------------------------------------------------------
    def _health(self, req: Request) -> Response:
        key = req.header("x-api-key")
        if key is None and req.header("authorization"):
            self._auth(req, master=False)
        return json_response(200, {"healthy": True, "is_logged_in": key in self.api_keys})

    def _search(self, req: Request) -> Response:
        return self._do_search(req, legacy=self.legacy_shape)

    def _legacy_search(self, req: Request) -> Response:
        return self._do_search(req, legacy=True)

    def _do_search(self, req: Request, *, legacy: bool) -> Response:
        self._auth(req)
        params = _params(req)
        page = _int(params.get("page", 1))
        per_page = _int(params.get("per_page", 10))
        if page < 1 or not 1 <= per_page <= 100:
            raise _invalid()
        selection = self.dataset.select(**_filters(params))
        total = len(selection)
        offset = (page - 1) * per_page
        if page > self.max_pages or offset >= self.max_records:
            indices: list[int] = []
        else:
            indices = selection.indices(offset, min(offset + per_page, self.max_records))
        records = apply_page_fault(self.faults.take_page_fault(page), indices)
        if records is None:
            return malformed_response()
        shape = self._full if legacy else self._obfuscated
        people = [shape(self.dataset.person(i), reveal=False) for i in records]
        if not legacy:
            return json_response(200, {"total_entries": total, "people": people})
        pagination = {
            "page": page,
            "per_page": per_page,
            "total_entries": total,
            "total_pages": -(-total // per_page),
        }
        body = {
            "breadcrumbs": [],
            "partial_results_only": False,
            "disable_eu_prospecting": False,
            "partial_results_limit": 10000,
            "contacts": [],
        }
        body |= {"people": people, "pagination": pagination}
        return json_response(200, body)

    def _bulk_match(self, req: Request) -> Response:
        self._auth(req)
        body = _json_object(req)
        details = body.get("details")
        if not isinstance(details, list) or not 1 <= len(details) <= 10:
            raise _invalid()
        matches = [self._lookup(d) for d in details]
        found = [m for m in matches if m is not None]
        with self._lock:
            self.credits_used += len(found)
        return json_response(
            200,
            {
                "status": "success",
                "error_code": None,
                "error_message": None,
                "total_requested_enrichments": len(details),
                "unique_enriched_records": len(found),
                "missing_records": len(details) - len(found),
                "credits_consumed": len(found),
                "matches": [None if m is None else self._full(m, reveal=True) for m in matches],
            },
        )

    def _match(self, req: Request) -> Response:
        self._auth(req)
        person = self._lookup(_json_object(req) | _params(req))
        if person is not None:
            with self._lock:
                self.credits_used += 1
        return json_response(
            200, {"person": None if person is None else self._full(person, reveal=True)}
        )

    def _lookup(self, detail: Any) -> Person | None:
        """The person a match detail names by `id`, `email` or `linkedin_url`; else None."""
        if not isinstance(detail, dict):
            raise _invalid()
        index: int | None = None
        email = detail.get("email")
        if isinstance(pid := detail.get("id"), str) and pid.startswith(self._id_prefix):
            try:
                index = int(pid[len(self._id_prefix) :], 16)
            except ValueError:
                index = None
        elif isinstance(email, str):
            index = index_from_email(email)
        elif isinstance(url := detail.get("linkedin_url"), str):
            index = index_from_linkedin(url)
        if index is None or not self.dataset.contains(index):
            return None
        person = self.dataset.person(index)
        if isinstance(email, str) and "id" not in detail and person.email != email.lower():
            return None
        return person

    # -- shapes -----------------------------------------------------------------------------
    def person_id(self, index: int) -> str:
        return f"{self._id_prefix}{index:018x}"

    def _org_id(self, index: int) -> str:
        return f"{self._id_prefix}c0{index:016x}"

    def _obfuscated(self, p: Person, *, reveal: bool) -> dict[str, Any]:
        last = p.last_name
        return {
            "id": self.person_id(p.index),
            "first_name": p.first_name,
            # as documented: the first 2 characters, asterisks, the last character
            "last_name_obfuscated": f"{last[:2]}***{last[-1]}" if len(last) > 2 else "***",
            "title": p.title.title,
            "last_refreshed_at": _iso(p.updated_at),
            "has_email": True,
            "has_city": True,
            "has_state": True,
            "has_country": True,
            "has_direct_phone": "Yes",
            "organization": {
                "name": p.company.name,
                "has_industry": True,
                "has_phone": True,
                "has_city": True,
                "has_state": True,
                "has_country": True,
                "has_zip_code": False,
                "has_revenue": True,
                "has_employee_count": True,
            },
        }

    def _full(self, p: Person, *, reveal: bool) -> dict[str, Any]:
        c = p.company
        org_id = self._org_id(c.index)
        out: dict[str, Any] = {
            "id": self.person_id(p.index),
            "first_name": p.first_name,
            "last_name": p.last_name,
            "name": p.name,
            "linkedin_url": p.linkedin_url,
            "title": p.title.title,
            "email_status": "verified",
            "photo_url": None,
            "twitter_url": None,
            "github_url": None,
            "facebook_url": None,
            "extrapolated_email_confidence": None,
            "headline": f"{p.title.title} at {c.name}",
            "email": p.email if reveal else PLACEHOLDER_EMAIL,
            "organization_id": org_id,
            "employment_history": [_current_job(org_id, c.name, p.title.title)],
            "state": p.location.state,
            "city": p.location.city,
            "country": p.location.country,
            "organization": self._organization(c),
            "is_likely_to_engage": False,
            "departments": [p.title.department.lower().replace(" ", "_")],
            "subdepartments": [],
            "functions": [],
            "seniority": p.title.seniority,
            "show_intent": False,
            "revealed_for_current_team": reveal,
        }
        return out

    def _organization(self, c: Company) -> dict[str, Any]:
        """The employer as the enrichment example shows it (its long lists left out)."""
        return {
            "id": self._org_id(c.index),
            "name": c.name,
            "website_url": f"http://www.{c.domain}",
            "blog_url": None,
            "angellist_url": None,
            "linkedin_url": f"http://www.linkedin.com/company/{c.domain.split('.')[0]}",
            "twitter_url": None,
            "facebook_url": None,
            "primary_phone": {},
            "languages": [],
            "alexa_ranking": None,
            "phone": None,
            "linkedin_uid": None,
            "founded_year": None,
            "publicly_traded_symbol": None,
            "publicly_traded_exchange": None,
            "logo_url": None,
            "crunchbase_url": None,
            "primary_domain": c.domain,
            "industry": c.industry,
            "keywords": [],
            "estimated_num_employees": c.employees,
            "industries": [c.industry],
            "secondary_industries": [],
            "raw_address": f"{c.hq.city}, {c.hq.country}",
            "street_address": None,
            "city": c.hq.city,
            "state": None,
            "postal_code": None,
            "country": c.hq.country,
        }


def _current_job(org_id: str, org_name: str, title: str) -> dict[str, Any]:
    """One `employment_history` entry, shaped as the enrichment example's."""
    job_id = f"{org_id[:12]}e0{org_id[-10:]}"
    return {
        "_id": job_id, "created_at": None, "current": True, "degree": None, "description": None,
        "emails": None, "end_date": None, "grade_level": None, "kind": None, "major": None,
        "organization_id": org_id, "organization_name": org_name, "raw_address": None,
        "start_date": None, "title": title, "updated_at": None, "id": job_id, "key": job_id,
    }  # fmt: skip


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(epoch))


def _json_object(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        raise _invalid() from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _invalid()
    return body


def _params(req: Request) -> dict[str, Any]:
    """Query parameters overlaid by the JSON body; `name[]` and `name` mean the same."""
    merged: dict[str, Any] = {}
    for key, values in req.query.items():
        name = key.removesuffix("[]")
        merged[name] = values if key.endswith("[]") or name in _LIST_FILTERS else values[0]
        if name == "organization_num_employees_ranges":
            merged[name] = values
    for key, value in (_json_object(req) if req.method == "POST" else {}).items():
        merged[key.removesuffix("[]")] = value
    return merged


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise _invalid()
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _invalid() from None


def _str_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _invalid()


def _range(value: str) -> tuple[int, int | None]:
    lo, sep, hi = value.partition(",")
    try:
        if not sep:
            raise ValueError(value)
        return int(lo), (int(hi) if hi.strip() else None)
    except ValueError:
        raise _invalid() from None


def _filters(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, arg in _LIST_FILTERS.items():
        if name in params:
            out[arg] = _str_list(params[name])
    if "organization_num_employees_ranges" in params:
        ranges = _str_list(params["organization_num_employees_ranges"])
        out["employee_ranges"] = [_range(r) for r in ranges]
    if (keywords := params.get("q_keywords")) is not None:
        if not isinstance(keywords, str):
            raise _invalid()
        out["keywords"] = keywords
    return out
