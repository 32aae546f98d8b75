"""`zoominfo`: contacts from ZoomInfo's Enterprise API contact search, optionally enriched.

Why it looks like this: every call needs a JWT from `/authenticate` (password or a client-signed
RS256 JWT, "PKI"), which lives 60 minutes and may only be asked for once a second; tokens are
cached per credential in the process, renewed at 55/60 of their life and once more when a call
answers 401 mid-job. The match count is `maxResults` (`totalResults` is the page's own count; the
other reading is accepted too, `.counts`), but paging ends only on a short or
empty page or at the 1,000-record window; a search with more matches than that is partitioned
(headcount ranges and the user's own filter values first, then the default management levels and
countries; `connectors.kit.partition`) and the plan is the checkpoint. Enrichment
(`/enrich/contact`, 25 per call) costs record credits and never spends more than the job's budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from functools import partial
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.base import (
    Checkpoint,
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorParams,
    Estimate,
    Page,
    RateLimiter,
    RunContext,
)
from connectors.errors import AuthError, ForbiddenError
from connectors.kit import http
from connectors.kit.partition import (
    COUNTRIES,
    Dimension,
    Enrichment,
    EnrichmentRefused,
    Filters,
    Range,
    RangeDimension,
    SearchResult,
    ValuesDimension,
    check_search,
    enrich_batches,
    job_filters,
    request_json,
    search_estimate,
    search_pages,
    sent_filters,
)
from connectors.providers.zoominfo.auth import AUTH_SPACING_S, TokenSource, reveal
from connectors.providers.zoominfo.auth import TOKEN_LIFE_S as TOKEN_LIFE_S
from connectors.providers.zoominfo.auth import TOKEN_RENEW_AT as TOKEN_RENEW_AT
from connectors.providers.zoominfo.auth import (
    _Tokens as _Tokens,  # tests reset the cache through here
)
from connectors.providers.zoominfo.counts import read_counts
from records import LeadRecord
from records.normalize import normalize_record

BASE_URL = "https://api.zoominfo.com"
MAX_RECORDS = 1000
#: ZoomInfo's record credits left on the contract, on every answer
USAGE_HEADER = "X-Usage-Record-Limit-Remaining"
ENRICH_BATCH = 25
MANAGEMENT_LEVELS = ("C Level Exec", "VP Level Exec", "Director", "Manager", "Non Manager")
EMPLOYEE_BUCKETS: tuple[Range, ...] = (
    (1, 10), (11, 20), (21, 50), (51, 100), (101, 250), (251, 500), (501, 1000),
    (1001, 5000), (5001, 10000), (10001, None),
)  # fmt: skip
#: documented enrich output fields (`/lookup/outputfields/contact/enrich`); the company ones
#: come back inside `company` (`website`, `employeeCount`, `primaryIndustry`)
OUTPUT_FIELDS = (
    "id", "firstName", "lastName", "email", "phone", "jobTitle", "companyName", "companyWebsite",
    "companyEmployeeCount", "companyPrimaryIndustry", "city", "state", "country", "externalUrls",
)  # fmt: skip
PartitionKey = Literal["employees", "managementLevel", "country", "state"]
Values = str | list[str] | None


def _default_partition_by() -> list[PartitionKey]:
    # Exhaustive splits go first whatever this order (see `split_partition`); `state` has no
    # default values, so it splits only a search that filters on states
    return ["employees", "managementLevel", "country", "state"]


class ZoomInfoFilters(BaseModel):
    """Contact Search filters; several values: a list or a comma-separated string."""

    model_config = ConfigDict(extra="forbid")

    jobTitle: Values = None
    managementLevel: Values = None
    jobFunction: Values = None
    department: Values = None
    companyName: Values = None
    companyWebsite: Values = None
    country: Values = None
    state: Values = None
    industryKeywords: Values = None
    employeeRangeMin: int | None = Field(None, ge=1)
    employeeRangeMax: int | None = Field(None, ge=1)


class ZoomInfoConfig(ConnectorConfig):
    base_url: str = BASE_URL
    username: str
    password: SecretStr | None = None
    #: PKI: sign our own RS256 JWT with `private_key` (PEM) instead of sending a password
    client_id: str | None = None
    private_key: SecretStr | None = None
    requests_per_minute: int = Field(1500, ge=1)
    limit_window_s: float = Field(60.0, gt=0)
    enrich: bool = False
    output_fields: list[str] = Field(default_factory=lambda: list(OUTPUT_FIELDS))
    default_filters: ZoomInfoFilters = Field(default_factory=ZoomInfoFilters)
    partition_by: list[PartitionKey] = Field(default_factory=_default_partition_by)
    partition_countries: list[str] = Field(default_factory=lambda: list(COUNTRIES))
    max_records: int = Field(MAX_RECORDS, ge=1)

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> ZoomInfoConfig:
        if self.password is None and (self.client_id is None or self.private_key is None):
            raise ValueError("give a password, or client_id and private_key (PKI)")
        return self


class ZoomInfoParams(ZoomInfoFilters, ConnectorParams):
    rpp: int = Field(100, ge=1, le=100)
    max_credits: int | None = Field(None, ge=0)


def _employee_ranges(filters: Filters) -> list[Range]:
    lo, hi = filters.get("employeeRangeMin"), filters.get("employeeRangeMax")
    return [] if lo is None and hi is None else [(int(lo or 1), None if hi is None else int(hi))]


def dimensions(config: ZoomInfoConfig) -> list[Dimension]:
    def write(rng: Range) -> Filters:
        return {"employeeRangeMin": rng[0], "employeeRangeMax": rng[1]}

    dims: dict[str, Dimension] = {
        "employees": RangeDimension("employees", EMPLOYEE_BUCKETS, _employee_ranges, write),
        "managementLevel": ValuesDimension(
            "managementLevel", "managementLevel", MANAGEMENT_LEVELS, as_csv=True
        ),
        "country": ValuesDimension(
            "country", "country", tuple(config.partition_countries), as_csv=True
        ),
        "state": ValuesDimension("state", "state", (), as_csv=True),
    }
    return [dims[name] for name in config.partition_by]


def _first(value: Any) -> Any:
    """A list's first item (ZoomInfo answers some fields as lists), else the value itself."""
    return (value[0] if value else None) if isinstance(value, list) else value


def to_lead(contact: dict[str, Any]) -> LeadRecord:
    """A lead from a search or enriched contact; company fields flat, under their documented
    output field names (`companyWebsite`, `companyEmployeeCount`, `companyPrimaryIndustry`), or,
    as the documented enrich example answers them, inside `company` (`website`,
    `employeeCount`, `primaryIndustry`)."""
    company = contact.get("company") or {}
    size = contact.get("companyEmployeeCount", company.get("employeeCount"))
    industry = contact.get("companyPrimaryIndustry") or company.get("primaryIndustry")
    urls = contact.get("externalUrls") or []
    linkedin = next((u.get("url") for u in urls if "linkedin" in str(u.get("type", ""))), None)
    return normalize_record(
        LeadRecord(
            first_name=contact.get("firstName"),
            last_name=contact.get("lastName"),
            email=contact.get("email"),
            title=contact.get("jobTitle"),
            company_name=contact.get("companyName") or company.get("name"),
            company_domain=contact.get("companyWebsite") or company.get("website"),
            company_industry=_first(industry),
            company_size=None if size in (None, "") else str(size),
            linkedin_url=linkedin,
            phone=contact.get("phone") or contact.get("mobilePhone"),
            city=contact.get("city"),
            state=contact.get("state"),
            country=contact.get("country"),
            external_id=str(contact["id"]),
            raw=contact,
        )
    )


class _Session:
    """One job's (or check's) conversation with ZoomInfo; its JWTs come from `TokenSource`."""

    def __init__(
        self,
        config: ZoomInfoConfig,
        ctx: RunContext | None,
        *,
        max_attempts: int = 6,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.max_attempts = max_attempts
        self.secrets = tuple(s for s in (reveal(config.password), reveal(config.private_key)) if s)
        self.client = http.make_client(
            config.base_url.rstrip("/"), secrets=self.secrets, transport=transport
        )
        self.limiter: RateLimiter | None = None
        self.auth_limiter: RateLimiter | None = None
        self.enrich_refused = False
        self.balance: int | None = None
        self.counts_warned = False  # counts that fit no reading are reported once per job
        if ctx is not None:
            window = config.limit_window_s
            self.limiter = ctx.rate_limiter("zoominfo:api", config.requests_per_minute, window)
            self.auth_limiter = ctx.rate_limiter("zoominfo:auth", 1, AUTH_SPACING_S)
        # a token request spends nothing: asking twice only issues another JWT
        self.auth = TokenSource(
            config, ctx, send=partial(self._send, idempotent=True), limiter=self.auth_limiter
        )

    def _send(
        self, path: str, limiter: RateLimiter | None, *, idempotent: bool, **kwargs: Any
    ) -> dict[str, Any]:
        """POST `path`; `idempotent` as in `request_json`: searches yes, paid enrichment never."""
        return request_json(
            self.client,
            "POST",
            path,
            provider="zoominfo",
            ctx=self.ctx,
            limiter=limiter,
            max_attempts=self.max_attempts,
            secrets=self.secrets,
            idempotent=idempotent,
            seen=self._report_balance,
            **kwargs,
        )

    def _report_balance(self, response: httpx.Response) -> None:
        """`X-Usage-Record-Limit-Remaining`: the record credits the contract has left, kept on
        the data source as its last known balance (when it changes)."""
        value = response.headers.get(USAGE_HEADER, "")
        if self.ctx is None or not value.strip().isdigit():
            return
        remaining = int(value)
        if remaining != self.balance:
            self.balance = remaining
            self.ctx.report_balance(remaining)

    def call(self, path: str, body: dict[str, Any], *, idempotent: bool) -> dict[str, Any]:
        token = self.auth.token()
        headers = {"Authorization": f"Bearer {token}"}
        send = partial(self._send, path, self.limiter, idempotent=idempotent, json=body)
        try:
            return send(headers=headers)
        except AuthError:
            # 401: the provider refused the call, so sending it again acts at most once
            if self.ctx is not None:  # expired or revoked mid-job: renew once, then give up
                self.ctx.log.info("zoominfo.token_renewed", reason="401")
            return send(headers={"Authorization": f"Bearer {self.auth.token(stale=token)}"})

    def search(self, filters: Filters, page: int, rpp: int) -> SearchResult[dict[str, Any]]:
        body = sent_filters(filters) | {"rpp": rpp, "page": page}
        data = self.call("/search/contact", body, idempotent=True)
        items = list(data.get("data") or [])
        counts = read_counts(data, len(items), page=page, rpp=rpp)
        if not counts.agrees and not self.counts_warned and self.ctx is not None:
            self.counts_warned = True
            self.ctx.log.warning(
                "zoominfo.counts_disagree",
                message="maxResults/totalResults fit neither reading of the page; paging "
                "by the pages themselves (a short or empty page ends a search)",
                page=page,
                records=len(items),
                maxResults=counts.max_results,
                totalResults=counts.total_results,
            )
        return SearchResult(counts.matches, items)

    def enrich(self, contacts: list[dict[str, Any]], allowance: int) -> Enrichment:
        """`contacts` with enriched fields laid over the matched ones; record credits spent
        (one per match). Contacts whose search result says `hasEmail: false` are not worth a
        credit; once ZoomInfo refuses (record limit used up) the job goes on without emails."""
        if self.enrich_refused:
            return Enrichment(contacts, 0, len(contacts))
        return enrich_batches(
            contacts,
            allowance,
            batch_size=ENRICH_BATCH,
            worth=lambda c: c.get("hasEmail", True) is not False,
            match=self.enrich_contacts,
            provider="zoominfo",
            what="contacts",
            ctx=self.ctx,
            to_lead=to_lead,
        )

    def enrich_contacts(self, contacts: list[dict[str, Any]]) -> tuple[dict[str, Any], int]:
        """One paid `/enrich/contact` call: the matched contacts by person id, credits spent."""
        inputs = [{"personId": c["id"]} for c in contacts]
        body = {"matchPersonInput": inputs, "outputFields": self.config.output_fields}
        try:
            data = self.call("/enrich/contact", body, idempotent=False).get("data") or {}
        except ForbiddenError as exc:  # record limit used up: keep the leads, no emails
            if self.ctx is not None:
                self.ctx.log.warning("zoominfo.enrich_refused", error=str(exc))
            self.enrich_refused = True
            raise EnrichmentRefused from exc
        found: dict[str, Any] = {}
        for result in data.get("result") or []:
            if result.get("data"):
                found[_person_id(result)] = result["data"][0]
        return found, len(found)

    def close(self) -> None:
        self.client.close()


def _person_id(result: dict[str, Any]) -> str:
    """The person an enrich result answers: its echoed input (ZoomInfo's documented example
    echoes input keys lower-cased: `personid`), else the matched record's `id`."""
    echoed = {str(k).lower(): v for k, v in (result.get("input") or {}).items()}
    pid = echoed.get("personid")
    return str(pid if pid is not None else result["data"][0].get("id"))


class ZoomInfoConnector(Connector):
    type = "zoominfo"
    Config = ZoomInfoConfig
    Params = ZoomInfoParams

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._transport = transport  # a seam for tests: replay documented answers (MockTransport)

    def check(self, config: ZoomInfoConfig) -> CheckResult:
        def probe() -> SearchResult[dict[str, Any]]:
            with closing(_Session(config, None, max_attempts=2, transport=self._transport)) as s:
                return s.search(config.default_filters.model_dump(exclude_none=True), 1, 1)

        return check_search(probe, to_lead, "contacts")

    def estimate(self, config: ZoomInfoConfig, params: ZoomInfoParams) -> Estimate:
        """One search call of one record (searches cost no credits): its match count, and at
        most one credit per match when the source enriches (capped by `max_credits`)."""
        base = job_filters(config.default_filters, params, ZoomInfoFilters)
        with closing(_Session(config, None, max_attempts=2, transport=self._transport)) as session:
            total = session.search(base, 1, 1).total
        return search_estimate(total, enrich=config.enrich, max_credits=params.max_credits)

    def pages(
        self,
        config: ZoomInfoConfig,
        params: ZoomInfoParams,
        checkpoint: Checkpoint,
        ctx: RunContext,
    ) -> Iterator[Page]:
        rpp = params.rpp
        with closing(_Session(config, ctx, transport=self._transport)) as session:
            yield from search_pages(
                checkpoint,
                base=job_filters(config.default_filters, params, ZoomInfoFilters),
                fetch=lambda filters, page: session.search(filters, page, rpp),
                dimensions=dimensions(config),
                cap=(config.max_records // rpp) * rpp,
                per_page=rpp,
                ctx=ctx,
                event_prefix="zoominfo",
                to_lead=to_lead,
                enrich=session.enrich if config.enrich else None,
                max_credits=params.max_credits,
                counts_end_paging=False,  # ZoomInfo's counts are read two ways: pages decide
            )
