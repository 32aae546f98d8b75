"""ZoomInfo Enterprise API emulator: JWT authentication, contact search and enrichment.

Routes (base `emu.url`):

* `POST /authenticate` `{"username", "password"}` as JSON or form -> `{"jwt"}` valid
  `token_ttl_s` (default 3600). PKI variant: no body and `Authorization: Bearer <RS256 JWT>`
  signed by the client. With `public_key` set the signature is verified; without it any
  well-formed RS256 JWT whose `client_id` claim equals `emu.client_id` (and whose `username`
  claim, when present, equals `emu.username`) is accepted. Limited to 1 request per second
  (window `"authenticate"`).
* `POST /search/contact` flat JSON filters: `jobTitle`, `managementLevel`, `department`,
  `jobFunction` (alias of department), `companyName`, `companyWebsite`, `country`, `state`,
  `industryKeywords`, and the partition fields `employeeRangeMin` / `employeeRangeMax`
  (integers, inclusive). A value may be a list or a comma-separated string (alternatives).
  `rpp` 1..100 (default 25), `page` from 1, `page * rpp > 1000` -> 400. `sortOrder: "desc"`
  reverses the order; `sortBy`, `requiredFields` and unknown fields are accepted and ignored.
  The answer reads as ZoomInfo's documented example
  `{"maxResults": 30579, "totalResults": 10, "currentPage": 1, "data": [10 contacts]}`:
  `maxResults` = matches, `totalResults` = records on this page (`counts="swapped"` answers the
  other way round, for clients that must accept both readings). `ignored_filters` names filters
  the emulator accepts and ignores (as a provider may), for partitioning that does not narrow.
* `POST /enrich/contact` `{"matchPersonInput": [{"personId"} | {"emailAddress"}] (1..25),
  "outputFields": [...]}`; missing or unknown `outputFields` (the documented output fields) ->
  400. As in the documented example, `input` is echoed with lower-cased keys and the `company*`
  fields come inside `company` (`companyWebsite` -> `company.website`). Each FULL_MATCH uses one
  record credit (`emu.records_used`); when `record_limit` would be passed -> 403.

Every response carries `X-RateLimit-Limit/-Remaining/-Reset` (epoch s, window `"default"`,
1,500 requests per sliding minute, not counting `/authenticate`) and
`X-Usage-Record-Limit-Remaining`. Errors use the envelope
`{"success": false, "statusCode": N, "error": "..."}`; an expired or revoked JWT is 401
`Authentication failed`. `faults.expire_tokens()` revokes every JWT issued so far.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any, Literal
from urllib.parse import parse_qs

import jwt

from connectors.sandbox.dataset import Dataset, Person, index_from_email
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

AUTH = "/authenticate"
SEARCH = "/search/contact"
ENRICH = "/enrich/contact"
ID_BASE = 1_000_000_000
MAX_ENRICH_INPUTS = 25
_FILTERS = {
    "jobTitle": "titles",
    "managementLevel": "management_levels",
    "department": "departments",
    "jobFunction": "departments",
    "companyName": "company_names",
    "companyWebsite": "domains",
    "country": "countries",
    "state": "states",
    "industryKeywords": "industries",
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(
        status, {"success": False, "statusCode": status, "error": message}, headers
    )


def _reject(status: int, message: str) -> Reject:
    return Reject(_error(status, message))


class ZoomInfoEmulator(Emulator):
    name = "zoominfo"

    def __init__(
        self,
        *,
        people: int = 120_000,
        seed: int = 0,
        username: str = "zoominfo-user",
        password: str = "zoominfo-pass",
        client_id: str = "zoominfo-client",
        public_key: str | bytes | None = None,
        no_access_users: tuple[str, ...] = ("zoominfo-no-access",),
        token_ttl_s: float = 3600.0,
        requests_per_minute: int = 1500,
        record_limit: int = 1_000_000,
        max_records: int = 1000,
        counts: Literal["documented", "swapped"] = "documented",
        ignored_filters: tuple[str, ...] = (),
        port: int = 0,
        latency_ms: float = 0.0,
        rate_limit: tuple[int, float] | str | None = None,
    ) -> None:
        super().__init__(port=port, latency_ms=latency_ms)
        self.dataset = Dataset(people, seed)
        self.username = username
        self.password = password
        self.client_id = client_id
        self.public_key = public_key
        self.no_access_users = set(no_access_users)
        self.token_ttl_s = token_ttl_s
        self.record_limit = record_limit
        self.records_used = 0
        self.max_records = max_records
        self.counts = counts
        self.ignored_filters = frozenset(ignored_filters)
        self.tokens_issued = 0
        self._secret = secrets.token_hex(16)
        self.windows["authenticate"] = Window("authenticate", 1, 1.0, paths=frozenset({AUTH}))
        self.set_rate_limit(*(_rate(rate_limit) or (requests_per_minute, 60.0)))
        self.routes.update(
            {
                ("POST", AUTH): self._authenticate,
                ("POST", SEARCH): self._search,
                ("POST", ENRICH): self._enrich,
            }
        )

    # -- pipeline hooks ---------------------------------------------------------------------
    def window_applies(self, window: Window, req: Request) -> bool:
        if window.paths is None and req.path == AUTH:
            return False
        return super().window_applies(window, req)

    def throttled(self, req: Request, retry_after: float, window: Window | None) -> Response:
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
        return _error(429, "Rate limit exceeded", headers)

    def failure(self, req: Request, status: int, message: str) -> Response:
        return _error(status, "Authentication failed" if status == 401 else message)

    def decorate(self, req: Request, response: Response) -> None:
        now = self.clock.now()
        with self._lock:
            window = self.windows.get("default")
            if window is not None:
                reset = window.reset_in(now) or window.period_s
                response.headers["X-RateLimit-Limit"] = str(window.limit)
                response.headers["X-RateLimit-Remaining"] = str(window.remaining(now))
                response.headers["X-RateLimit-Reset"] = str(math.ceil(self.clock.wall() + reset))
        left = max(0, self.record_limit - self.records_used)
        response.headers["X-Usage-Record-Limit-Remaining"] = str(left)

    # -- authentication ---------------------------------------------------------------------
    def issue_token(self, username: str | None = None) -> str:
        """A JWT as `/authenticate` would answer (tests may skip the endpoint)."""
        now = self.clock.wall()
        with self._lock:
            self.tokens_issued += 1
        claims = {
            "sub": username or self.username,
            "iat": int(now),
            "exp": now + self.token_ttl_s,
            "epoch": self.faults.token_epoch,
            "jti": str(self.tokens_issued),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def _authenticate(self, req: Request) -> Response:
        bearer = _bearer(req)
        if bearer is not None and not req.body.strip():
            username = self._pki_user(bearer)
        else:
            creds = _credentials(req)
            username = str(creds.get("username"))
            known = username == self.username or username in self.no_access_users
            if not known or creds.get("password") != self.password:
                raise _reject(401, "Authentication failed")
        return json_response(200, {"jwt": self.issue_token(username)})

    def _pki_user(self, token: str) -> str:
        try:
            if jwt.get_unverified_header(token).get("alg") != "RS256":
                raise _reject(401, "Authentication failed")
            if self.public_key is not None:
                claims = jwt.decode(
                    token, self.public_key, algorithms=["RS256"], options={"verify_aud": False}
                )
            else:
                claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _reject(401, "Authentication failed") from None
        user = claims.get("username", self.username)
        if claims.get("client_id") != self.client_id or user != self.username:
            raise _reject(401, "Authentication failed")
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp < self.clock.wall():
            raise _reject(401, "Authentication failed")
        return str(user)

    def _user(self, req: Request) -> str:
        token = _bearer(req)
        if token is None:
            raise _reject(401, "Authentication failed")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                # expiry and issue time are judged by the emulated clock below, not the real one
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise _reject(401, "Authentication failed") from None
        if claims.get("epoch") != self.faults.token_epoch or claims["exp"] <= self.clock.wall():
            raise _reject(401, "Authentication failed")
        user = str(claims["sub"])
        if user in self.no_access_users:
            raise _reject(403, "You do not have access to this endpoint")
        return user

    # -- routes -----------------------------------------------------------------------------
    def _search(self, req: Request) -> Response:
        self._user(req)
        body = _body(req)
        rpp, page = _positive(body, "rpp", 25), _positive(body, "page", 1)
        if rpp > 100:
            raise _reject(400, "rpp cannot exceed 100")
        if page * rpp > self.max_records:
            raise _reject(400, f"Pagination is limited to {self.max_records} records")
        heeded = {k: v for k, v in body.items() if k not in self.ignored_filters}
        selection = self.dataset.select(**_filters(heeded))
        total = len(selection)
        start, stop = (page - 1) * rpp, min(page * rpp, total)
        if str(body.get("sortOrder", "asc")).lower() == "desc":
            indices = [selection[total - 1 - j] for j in range(start, stop)]
        else:
            indices = selection.indices(start, stop)
        records = apply_page_fault(self.faults.take_page_fault(page), indices)
        if records is None:
            return malformed_response()
        data = [self._contact(self.dataset.person(i)) for i in records]
        matches, on_page = (total, len(data))
        if self.counts == "swapped":
            matches, on_page = on_page, matches
        payload = {
            "maxResults": matches,
            "totalResults": on_page,
            "currentPage": page,
            "data": data,
        }
        return json_response(200, payload)

    def _enrich(self, req: Request) -> Response:
        self._user(req)
        body = _body(req)
        fields = body.get("outputFields")
        if not isinstance(fields, list) or not fields:
            raise _reject(400, "outputFields is required")
        unknown = [f for f in fields if f not in _OUTPUT_FIELDS]
        if unknown:
            raise _reject(400, f"Invalid outputFields: {', '.join(map(str, unknown))}")
        inputs = body.get("matchPersonInput")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_ENRICH_INPUTS:
            raise _reject(400, f"matchPersonInput needs 1 to {MAX_ENRICH_INPUTS} inputs")
        people = [self._lookup(item) for item in inputs]
        matched = sum(1 for p in people if p is not None)
        with self._lock:
            if self.records_used + matched > self.record_limit:
                raise _reject(403, "Record limit exceeded")
            self.records_used += matched
        result = [
            {
                "input": {str(k).lower(): v for k, v in item.items()},
                "data": [] if p is None else [self._enriched(p, fields)],
                "matchStatus": "NO_MATCH" if p is None else "FULL_MATCH",
            }
            for item, p in zip(inputs, people, strict=True)
        ]
        echoed = [[str(f).lower() for f in fields]]
        return json_response(
            200, {"success": True, "data": {"outputFields": echoed, "result": result}}
        )

    def _lookup(self, item: Any) -> Person | None:
        if not isinstance(item, dict):
            raise _reject(400, "matchPersonInput entries must be objects")
        index: int | None = None
        email = item.get("emailAddress")
        if (pid := item.get("personId")) is not None:
            try:
                index = int(pid) - ID_BASE
            except (TypeError, ValueError):
                index = None
        elif isinstance(email, str):
            index = index_from_email(email)
        if index is None or not self.dataset.contains(index):
            return None
        person = self.dataset.person(index)
        if isinstance(email, str) and "personId" not in item and person.email != email.lower():
            return None
        return person

    # -- shapes -----------------------------------------------------------------------------
    def _contact(self, p: Person) -> dict[str, Any]:
        """A search result: the documented example's fields, in its order."""
        company = {"id": 5_000_000 + p.company.index, "name": p.company.name}
        return {
            "id": ID_BASE + p.index,
            "firstName": p.first_name,
            "middleName": "",
            "lastName": p.last_name,
            "validDate": _date(p.updated_at),
            "lastUpdatedDate": _date(p.updated_at),
            "jobTitle": p.title.title,
            "contactAccuracyScore": 70 + p.updated_at % 30,
            "hasEmail": True,
            "hasSupplementalEmail": False,
            "hasDirectPhone": True,
            "hasMobilePhone": p.index % 3 == 0,
            **dict.fromkeys(_HAS_COMPANY, True),
            "company": company,
        }

    def _enriched(self, p: Person, fields: list[str]) -> dict[str, Any]:
        """The requested fields; `company*` ones inside `company`, as the documented example."""
        full = _full_contact(p)
        out: dict[str, Any] = {}
        for f in fields:
            if f.startswith("company"):
                key = f[len("company") :]
                out.setdefault("company", {})[key[:1].lower() + key[1:]] = full.get(f)
            else:
                out[f] = full.get(f)
        return out


_HAS_COMPANY = (
    "hasCompanyIndustry", "hasCompanyPhone", "hasCompanyStreet", "hasCompanyState",
    "hasCompanyZipCode", "hasCompanyCountry", "hasCompanyRevenue", "hasCompanyEmployeeCount",
)  # fmt: skip

#: the documented contact enrich output fields (`/lookup/outputfields/contact/enrich`), plus
#: `mobilePhone`, which the documented enrich request example asks for
_OUTPUT_FIELDS = frozenset((
    "id", "firstName", "middleName", "lastName", "email", "hasCanadianEmail", "phone",
    "mobilePhone", "directPhoneDoNotCall", "street", "city", "region", "metroArea", "zipCode",
    "state", "country", "continent", "personHasMoved", "withinEu", "withinCalifornia",
    "withinCanada", "validDate", "lastUpdatedDate", "noticeProvidedDate", "salutation", "suffix",
    "jobTitle", "jobFunction", "companyDivision", "education", "hashedEmails", "picture",
    "techSkills", "mobilePhoneDoNotCall", "externalUrls", "companyId", "companyName",
    "companyDescriptionList", "companyPhone", "companyFax", "companyStreet", "companyCity",
    "companyState", "companyZipCode", "companyCountry", "companyContinent", "companyLogo",
    "companySicCodes", "companyNaicsCodes", "contactAccuracyScore", "companyWebsite",
    "companyRevenue", "companyRevenueNumeric", "companyEmployeeCount", "companyType",
    "companyTicker", "companyRanking", "isDefunct", "companySocialMediaUrls", "isCalifornia",
    "isCanada", "companyPrimaryIndustry", "companyPrimaryIndustryCode",
    "companyPrimarySubIndustryCode", "companyIndustries", "companyIndustryCodes",
    "companyRevenueRange", "companyEmployeeRange", "employmentHistory", "managementLevel",
    "locationCompanyId", "companyEmployeeGrowth", "positionStartDate", "yearsOfExperience",
    "engagements",
))  # fmt: skip


def _full_contact(p: Person) -> dict[str, Any]:
    c = p.company
    return {
        "id": ID_BASE + p.index,
        "firstName": p.first_name,
        "lastName": p.last_name,
        "email": p.email,
        "phone": p.phone,
        "mobilePhone": p.phone if p.index % 3 == 0 else "",
        "jobTitle": p.title.title,
        "managementLevel": [p.title.management_level],
        "jobFunction": [{"name": p.title.department, "department": p.title.department}],
        "companyId": 5_000_000 + c.index,
        "companyName": c.name,
        "companyWebsite": f"www.{c.domain}",
        "companyEmployeeCount": c.employees,
        "companyPrimaryIndustry": [c.industry],
        "companyIndustries": [c.industry],
        "city": p.location.city,
        "state": p.location.state,
        "country": p.location.country,
        "externalUrls": [{"type": "linkedin.com", "url": p.linkedin_url}],
        "lastUpdatedDate": _date(p.updated_at),
        "contactAccuracyScore": 70 + p.updated_at % 30,
    }


def _date(epoch: int) -> str:
    """As the documented examples write dates: `6/19/2020 1:41 PM`."""
    t = time.gmtime(epoch)
    return f"{t.tm_mon}/{t.tm_mday}/{t.tm_year} {(t.tm_hour % 12) or 12}:{t.tm_min:02d} " + (
        "AM" if t.tm_hour < 12 else "PM"
    )


def _rate(spec: tuple[int, float] | str | None) -> tuple[int, float] | None:
    return parse_rate(spec) if isinstance(spec, str) else spec


def _bearer(req: Request) -> str | None:
    value = req.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _credentials(req: Request) -> dict[str, Any]:
    ctype = (req.header("content-type") or "").lower()
    if "application/x-www-form-urlencoded" in ctype:
        form = parse_qs(req.body.decode("utf-8", "replace"))
        return {k: v[0] for k, v in form.items()}
    return _body(req)


def _body(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        raise _reject(400, "Malformed JSON in request body") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _reject(400, "Request body must be a JSON object")
    return body


def _positive(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _reject(400, f"{name} must be an integer") from None
    if number < 1 or isinstance(value, bool):
        raise _reject(400, f"{name} must be a positive integer")
    return number


def _alternatives(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [v for v in (part.strip() for part in value.split(",")) if v]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _reject(400, f"{name} must be a string or a list of strings")


def _filters(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, list[str]] = {}
    for field, arg in _FILTERS.items():
        if body.get(field) not in (None, "", []):
            out.setdefault(arg, []).extend(_alternatives(field, body[field]))
    result: dict[str, Any] = dict(out)
    lo, hi = body.get("employeeRangeMin"), body.get("employeeRangeMax")
    if lo not in (None, "") or hi not in (None, ""):
        low = _optional_int(lo) or 1
        result["employee_ranges"] = [(low, _optional_int(hi))]
    return result


def _optional_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _reject(400, "employeeRangeMin/employeeRangeMax must be integers") from None
