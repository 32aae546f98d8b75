"""LinkedIn Lead Sync emulator: `GET /rest/leadFormResponses` and `GET /rest/leadForms/{id}`
with Rest.li 2.0 syntax, answering in the shapes of LinkedIn's documentation (the examples kept
under `tests/connectors/fixtures/linkedin/`).

`GET /rest/leadFormResponses?q=owner&owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A123)
&leadType=(leadType:SPONSORED)&submittedAtTimeRange=(start:MS,end:MS)&start=0&count=10`

* Headers: `Authorization: Bearer <token>`, `LinkedIn-Version: YYYYMM` (missing -> 400
  `VERSION_MISSING`; older than `min_version` -> 426 `NONEXISTENT_VERSION`) and
  `X-Restli-Protocol-Version: 2.0.0` (else 400). Parameters are parsed strictly as Rest.li 2.0
  (`restli`): encoded parentheses, unknown `q`, a bad URN or range -> 400 `ILLEGAL_ARGUMENT`;
  an owner not in `emu.accounts` -> 403 `ACCESS_DENIED`.
* Leads are sorted by `submittedAt` (then id); the time range is `start <= t < end`; leads
  older than 365 days are gone. `count` is 1..`max_count` (default 100, choice). Only
  `SPONSORED` leads exist. `emu.add_leads(n)` appends newer leads (incremental-sync tests).
* Elements carry `versionedLeadGenFormUrn` and answers by `questionId`, never the form: its
  questions are served at `/rest/leadForms/{formId}` (same headers). Lead k belongs to form
  `form_ids[k % forms]`; every form has its own question ids. `emu.forms` holds the form
  entities: delete one and it answers 404 `NOT_FOUND`.
* `repeats=r`: the last r of the `leads` initial responses are repeat submissions of the first r
  people (same answers, new response id and time).
* Bad token -> 401 `{"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN"}`;
  a token issued before `faults.expire_tokens()` -> 401 `EXPIRED_ACCESS_TOKEN` (65601, choice).
  `POST /oauth/v2/accessToken` (form `grant_type=refresh_token`, `refresh_token`, `client_id`,
  `client_secret`) or `emu.issue_token()` mint a new one; the refresh token keeps its expiry
  (`refresh_token_expires_in` counts down). `emu.revoke_refresh_token()` makes refreshes fail
  with 400 `invalid_request`, as LinkedIn answers a revoked or expired refresh token.
* Daily limit (`daily_limit`, window `"day"`, per resource: the lead responses; turns over at
  midnight UTC): 429 without any rate-limit or Retry-After headers; counted in `violations`.

Questions of every form: FIRST_NAME, LAST_NAME, EMAIL, COMPANY_NAME, JOB_TITLE, COUNTRY,
PHONE_NUMBER and one custom question without `predefinedField`.
"""

from __future__ import annotations

import bisect
import re
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs

from connectors.sandbox.dataset import Dataset, Person
from connectors.sandbox.restli import RestliSyntaxError, RestliValue, parse_query
from connectors.sandbox.server import (
    Emulator,
    Reject,
    Request,
    Response,
    Window,
    apply_page_fault,
    json_response,
    malformed_response,
)

LEADS = "/rest/leadFormResponses"
FORMS = "/rest/leadForms/"
TOKEN = "/oauth/v2/accessToken"
SCOPE = "r_marketing_leadgen_automation"
DAY_MS = 86_400_000
RETENTION_MS = 365 * DAY_MS
_URN = re.compile(r"^urn:li:(sponsoredAccount|organization):\d+$")
_QUESTIONS = (  # (question number, name, label, predefinedField)
    (1, "firstName", "First Name", "FIRST_NAME"),
    (2, "lastName", "Last Name", "LAST_NAME"),
    (3, "email", "Email address", "EMAIL"),
    (4, "company", "Company name", "COMPANY_NAME"),
    (5, "jobTitle", "Job title", "JOB_TITLE"),
    (6, "country", "Country/Region", "COUNTRY"),
    (7, "phoneNumber", "Phone number", "PHONE_NUMBER"),
    (8, "budget", "What is your budget?", None),
)


def _error(status: int, code: str, message: str, service_code: int | None = None) -> Reject:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    return Reject(json_response(status, body))


def _illegal(message: str) -> Reject:
    return _error(400, "ILLEGAL_ARGUMENT", message, 100)


class LinkedInEmulator(Emulator):
    name = "linkedin"

    def __init__(
        self,
        *,
        leads: int = 1000,
        seed: int = 0,
        access_token: str = "linkedin-test-token",
        accounts: tuple[str, ...] = ("urn:li:sponsoredAccount:123",),
        form_id: int = 5001,
        forms: int = 1,
        repeats: int = 0,
        client_id: str = "linkedin-client-id",
        client_secret: str = "linkedin-client-secret",
        min_version: str = "202411",
        daily_limit: int = 100_000,
        max_count: int = 100,
        span_days: int = 300,
        refresh_token: str = "linkedin-refresh-token",
        port: int = 0,
        latency_ms: float = 0.0,
        rate_limit: tuple[int, float] | str | None = None,
    ) -> None:
        super().__init__(port=port, latency_ms=latency_ms, rate_limit=rate_limit)
        self.dataset = Dataset(10_000_000, seed)
        self.accounts = set(accounts)
        self.form_id = form_id
        self.form_ids = [form_id + k for k in range(max(1, forms))]
        self.forms: dict[int, dict[str, Any]] = {
            fid: _form(fid, next(iter(sorted(self.accounts)))) for fid in self.form_ids
        }
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_revoked = False
        self._refresh_expires_ms = 0
        self._repeats = max(0, min(repeats, leads // 2))
        self._initial = leads
        self.min_version = min_version
        self.max_count = max_count
        self.refresh_token = refresh_token
        self._tokens: dict[str, int] = {access_token: 0}
        self._leads: list[tuple[int, int, bool]] = []  # (submittedAt ms, lead number, test)
        self._leads_lock = threading.Lock()
        self.windows["day"] = Window("day", daily_limit, 86400.0, fixed=True, wall=True)
        now = self.now_ms()
        step = span_days * DAY_MS // max(1, leads)
        self._leads = [(now - span_days * DAY_MS + k * step, k, False) for k in range(leads)]
        self._refresh_expires_ms = now + RETENTION_MS
        self.routes.update({("GET", LEADS): self._lead_responses, ("POST", TOKEN): self._token})
        for fid in self.form_ids:
            self.routes[("GET", f"{FORMS}{fid}")] = self._lead_form

    # -- test helpers -----------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock.wall() * 1000)

    def add_leads(self, count: int, *, at_ms: int | None = None, test: bool = False) -> list[int]:
        """Append `count` leads submitted at `at_ms` (default now), one second apart.

        Returns their `submittedAt` values.
        """
        with self._leads_lock:
            base = self.now_ms() if at_ms is None else at_ms
            number = len(self._leads)
            added = [(base + k * 1000, number + k, test) for k in range(count)]
            for lead in added:
                bisect.insort(self._leads, lead)
        return [t for t, _, _ in added]

    @property
    def lead_count(self) -> int:
        return len(self._leads)

    def revoke_refresh_token(self) -> None:
        self.refresh_revoked = True

    def person_number(self, number: int) -> int:
        """The dataset person behind lead `number` (a repeat submission reuses an earlier one)."""
        first_repeat = self._initial - self._repeats
        if self._repeats and first_repeat <= number < self._initial:
            return number - first_repeat
        return number

    def issue_token(self) -> str:
        token = f"li-{secrets.token_hex(12)}"
        self._tokens[token] = self.faults.token_epoch
        return token

    # -- pipeline hooks ---------------------------------------------------------------------
    def window_applies(self, window: Window, req: Request) -> bool:
        if window.name == "day":  # LinkedIn's daily limits are per resource
            return req.path == LEADS
        return req.path != TOKEN and super().window_applies(window, req)

    def throttled(self, req: Request, retry_after: float, window: Window | None) -> Response:
        message = (
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."
        )
        return json_response(429, {"status": 429, "code": "TOO_MANY_REQUESTS", "message": message})

    def failure(self, req: Request, status: int, message: str) -> Response:
        if status == 401:
            return _error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600).response
        code = {403: "ACCESS_DENIED", 404: "NOT_FOUND"}.get(status)
        if code is not None:
            return _error(status, code, message, 100).response
        return json_response(status, {"status": status, "code": "SERVER_ERROR", "message": message})

    # -- routes -----------------------------------------------------------------------------
    def _token(self, req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token" or not form.get("refresh_token"):
            message = 'A required parameter "refresh_token" is missing'
            return json_response(400, {"error": "invalid_request", "error_description": message})
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            message = "Client authentication failed"
            return json_response(401, {"error": "invalid_client", "error_description": message})
        left_ms = self._refresh_expires_ms - self.now_ms()
        if form["refresh_token"] != self.refresh_token or self.refresh_revoked or left_ms <= 0:
            message = (
                "The provided authorization grant or refresh token is invalid, expired or revoked"
            )
            return json_response(400, {"error": "invalid_request", "error_description": message})
        return json_response(
            200,
            {
                "access_token": self.issue_token(),
                "expires_in": 60 * 86_400,
                "refresh_token": self.refresh_token,
                "refresh_token_expires_in": left_ms // 1000,
                "scope": SCOPE,
            },
        )

    def _lead_form(self, req: Request) -> Response:
        self._check_headers(req)
        form_id = req.path.removeprefix(FORMS)
        form = self.forms.get(int(form_id)) if form_id.isdigit() else None
        if form is None:
            raise _error(404, "NOT_FOUND", f"Lead form {form_id} does not exist", 100)
        return json_response(200, form)

    def _check_headers(self, req: Request) -> None:
        value = req.header("authorization") or ""
        scheme, _, token = value.partition(" ")
        epoch = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if epoch is None:
            raise _error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
        if epoch != self.faults.token_epoch:
            message = "The token used in the request has expired"
            raise _error(401, "EXPIRED_ACCESS_TOKEN", message, 65601)
        version = req.header("linkedin-version")
        if not version:
            message = "A version must be present. Please specify a version by adding the "
            raise _error(400, "VERSION_MISSING", message + "LinkedIn-Version header.")
        if not re.fullmatch(r"\d{6}(\.\d{2})?", version) or version[:6] < self.min_version:
            raise _error(426, "NONEXISTENT_VERSION", f"Requested version {version} is not active")
        if req.header("x-restli-protocol-version") != "2.0.0":
            raise _illegal("X-Restli-Protocol-Version 2.0.0 is required")

    def _lead_responses(self, req: Request) -> Response:
        self._check_headers(req)
        try:
            params = parse_query(req.raw_query)
        except RestliSyntaxError as exc:
            raise _illegal(f"Malformed Rest.li parameter: {exc}") from None
        if _one(params, "q") != "owner":
            raise _illegal("q=owner is required")
        owner = _one(params, "owner")
        if not isinstance(owner, dict) or len(owner) != 1:
            raise _illegal("owner must be (sponsoredAccount:<urn>) or (organization:<urn>)")
        urn = next(iter(owner.values()))
        if not isinstance(urn, str) or not _URN.match(urn):
            raise _illegal(f"owner holds an invalid URN: {urn!r}")
        if urn not in self.accounts:
            raise _error(403, "ACCESS_DENIED", f"Not enough permissions to access owner {urn}", 100)
        lead_type = _one(params, "leadType")
        if not isinstance(lead_type, dict) or not isinstance(lead_type.get("leadType"), str):
            raise _illegal("leadType must be (leadType:SPONSORED|EVENT|COMPANY|...)")
        lo, hi = self._range(_one(params, "submittedAtTimeRange", required=False))
        start = _int(_one(params, "start", required=False) or "0", "start", 0)
        count = _int(_one(params, "count", required=False) or "10", "count", 1)
        if count > self.max_count:
            raise _illegal(f"count must be at most {self.max_count}")
        with self._leads_lock:
            lo = max(lo, self.now_ms() - RETENTION_MS)
            left = bisect.bisect_left(self._leads, (lo, -1, False))
            right = bisect.bisect_left(self._leads, (hi, -1, False))
            if lead_type["leadType"] != "SPONSORED":
                left = right
            window = self._leads[left + start : min(right, left + start + count)]
        records = apply_page_fault(self.faults.take_page_fault(start // count + 1), window)
        if records is None:
            return malformed_response()
        elements = [self._element(urn, lead) for lead in records]
        total = max(0, right - left)
        return json_response(
            200,
            {
                "paging": {"start": start, "count": count, "total": total, "links": []},
                "elements": elements,
            },
        )

    def _range(self, value: RestliValue | None) -> tuple[int, int]:
        if value is None:
            return 0, 2**62
        if not isinstance(value, dict) or set(value) - {"start", "end"}:
            raise _illegal("submittedAtTimeRange must be (start:<ms>,end:<ms>)")
        start = _int(value.get("start", "0"), "submittedAtTimeRange.start", 0)
        end = _int(value.get("end", str(2**62)), "submittedAtTimeRange.end", 0)
        if end < start:
            raise _illegal("submittedAtTimeRange end is before start")
        return start, end

    # -- shapes -----------------------------------------------------------------------------
    def _element(self, owner: str, lead: tuple[int, int, bool]) -> dict[str, Any]:
        submitted, number, test = lead
        person = self.person_number(number)
        p = self.dataset.person(person)
        form_id = self.form_ids[number % len(self.form_ids)]
        owner_key = owner.split(":")[2]
        element: dict[str, Any] = {
            "owner": {owner_key: owner},
            "submitter": f"urn:li:person:emu{person:08d}",
            "leadType": "SPONSORED",
            "versionedLeadGenFormUrn": (
                f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},1)"
            ),
            "id": f"{self.dataset.seed & 0xFFFFFFFF:08x}-0000-4000-8000-{number:012x}-4",
            "submittedAt": submitted,
            "testLead": test,
            "formResponse": {
                "answers": [
                    {
                        "answerDetails": {"textQuestionAnswer": {"answer": text}},
                        "questionId": _question_id(form_id, k),
                    }
                    for k, text in _answers(p, person)
                ],
                "consentResponses": [],
            },
        }
        if owner_key == "sponsoredAccount":
            campaign = f"urn:li:sponsoredCampaign:{700_000 + form_id}"
            element["leadMetadata"] = {"sponsoredLeadMetadata": {"campaign": campaign}}
            creative = f"urn:li:sponsoredCreative:{800_000 + form_id}"
            element["associatedEntity"] = {"associatedCreative": creative}
        return element


def _question_id(form_id: int, k: int) -> int:
    """Question ids differ between forms, as LinkedIn's do: a join by position cannot pass."""
    return form_id * 100 + k


def _form(form_id: int, owner: str) -> dict[str, Any]:
    """A `leadForms` entity as LinkedIn documents it (`content.questions[...]`)."""
    questions = []
    for k, name, label, field in _QUESTIONS:
        question: dict[str, Any] = {
            "questionId": _question_id(form_id, k),
            "name": name,
            "question": {"localized": {"en_US": label}},
            "questionDetails": {"textQuestionDetails": {"maxResponseLength": 300}},
            "responseRequired": field is not None,
            "responseEditable": True,
        }
        if field is not None:
            question["predefinedField"] = field
        questions.append(question)
    return {
        "id": form_id,
        "name": f"Emulated lead form {form_id}",
        "owner": {owner.split(":")[2]: owner},
        "creationLocale": {"country": "US", "language": "en"},
        "state": "PUBLISHED",
        "versionId": 1,
        "hiddenFields": [],
        "content": {
            "headline": {"localized": {"en_US": "Talk to us"}},
            "questions": questions,
            "legalInfo": {"legalInfoId": 1, "consents": []},
        },
    }


def _answers(p: Person, number: int) -> list[tuple[int, str]]:
    budgets = ("< $10k", "$10k-$50k", "$50k+")
    return [
        (1, p.first_name),
        (2, p.last_name),
        (3, p.email),
        (4, p.company.name),
        (5, p.title.title),
        (6, p.location.country),
        (7, p.phone),
        (8, budgets[number % 3]),
    ]


def _one(
    params: dict[str, list[RestliValue]], name: str, *, required: bool = True
) -> RestliValue | None:
    values = params.get(name)
    if not values:
        if required:
            raise _illegal(f"parameter {name} is required")
        return None
    if len(values) > 1:
        raise _illegal(f"parameter {name} given more than once")
    return values[0]


def _int(value: RestliValue | None, name: str, minimum: int) -> int:
    if not isinstance(value, str) or not value.isdigit() or int(value) < minimum:
        raise _illegal(f"{name} must be an integer >= {minimum}")
    return int(value)
