"""`apollo`: people from Apollo.io's People Search, optionally enriched with emails.

Why it looks like this: one Apollo search stops at 500 pages / 50,000 people, so a larger search is
partitioned (headcount ranges and the user's own filter values first, because they split without
losing anyone, then the default country list; `connectors.kit.partition`) and the partition plan is
the checkpoint. Search results carry no emails; enrichment (`/people/bulk_match`, ten people per
call) costs credits, so it is a data-source option and never spends more than the job's budget.
The `email_not_unlocked@domain.com` placeholder is never taken for an email.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

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
from connectors.errors import AuthError, ConfigError, TransientError
from connectors.kit import http
from connectors.kit.partition import (
    COUNTRIES,
    Dimension,
    Enrichment,
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
from records import LeadRecord
from records.normalize import normalize_domain, normalize_record

BASE_URL = "https://api.apollo.io/api/v1"
MAX_PAGES = 500
MAX_RECORDS = 50_000
BULK_MATCH_SIZE = 10
#: Apollo's standard headcount ranges (its UI's buckets); the last is open-ended
EMPLOYEE_BUCKETS: tuple[Range, ...] = (
    (1, 10), (11, 20), (21, 50), (51, 100), (101, 200), (201, 500), (501, 1000), (1001, 2000),
    (2001, 5000), (5001, 10000), (10001, None),
)  # fmt: skip
PartitionKey = Literal[
    "employees", "person_locations", "organization_locations", "person_seniorities"
]


def _default_partition_by() -> list[PartitionKey]:
    # Exhaustive splits go first whatever this order (see `split_partition`); seniorities have no
    # default values, so they split only a search that filters on them
    return ["employees", "person_seniorities", "person_locations", "organization_locations"]


class ApolloFilters(BaseModel):
    """The People Search filters; unset ones are not sent."""

    model_config = ConfigDict(extra="forbid")

    person_titles: list[str] | None = None
    person_locations: list[str] | None = None
    person_seniorities: list[str] | None = None
    organization_locations: list[str] | None = None
    q_organization_domains_list: list[str] | None = None
    organization_num_employees_ranges: list[str] | None = None
    q_keywords: str | None = None


class ApolloConfig(ConnectorConfig):
    api_key: SecretStr
    base_url: str = BASE_URL
    #: search (and every non-enrichment endpoint) requests per `limit_window_s`; defaults are the
    #: Basic plan's of docs.apollo.io "Rate Limits"
    search_limit: int = Field(200, ge=1)
    search_hourly_limit: int | None = Field(400, ge=1)
    #: enrichment (`bulk_match`) requests per `limit_window_s`
    enrich_limit: int = Field(1000, ge=1)
    limit_window_s: float = Field(60.0, gt=0)
    #: the provider's cap on one search (plans differ; the emulator makes them small)
    max_pages: int = Field(MAX_PAGES, ge=1)
    max_records: int = Field(MAX_RECORDS, ge=1)
    enrich: bool = False
    default_filters: ApolloFilters = Field(default_factory=ApolloFilters)
    #: dimensions tried, in order (exhaustive ones first), when a search exceeds the cap
    partition_by: list[PartitionKey] = Field(default_factory=_default_partition_by)
    #: values a location dimension splits an unfiltered search into (must not overlap); people
    #: elsewhere are out of reach of such a split and reported as `partition_incomplete`
    partition_locations: list[str] = Field(default_factory=lambda: list(COUNTRIES))
    partition_seniorities: list[str] = Field(default_factory=list)


class ApolloParams(ApolloFilters, ConnectorParams):
    per_page: int = Field(100, ge=1, le=100)
    #: most enrichment credits this job may spend (also bounded by the job's credit budget)
    max_credits: int | None = Field(None, ge=0)


def _parse_range(text: str) -> Range:
    lo, _, hi = text.partition(",")
    try:
        return int(lo or 1), (int(hi) if hi.strip() else None)
    except ValueError:
        raise ConfigError(f"organization_num_employees_ranges: {text!r} is not 'min,max'") from None


def _employee_ranges(filters: Filters) -> list[Range]:
    return [_parse_range(r) for r in filters.get("organization_num_employees_ranges") or []]


def _write_range(rng: Range) -> Filters:
    lo, hi = rng
    return {"organization_num_employees_ranges": [f"{lo},{'' if hi is None else hi}"]}


def dimensions(config: ApolloConfig) -> list[Dimension]:
    dims: dict[str, Dimension] = {
        "employees": RangeDimension("employees", EMPLOYEE_BUCKETS, _employee_ranges, _write_range),
        "person_locations": ValuesDimension(
            "person_locations", "person_locations", tuple(config.partition_locations)
        ),
        "organization_locations": ValuesDimension(
            "organization_locations", "organization_locations", tuple(config.partition_locations)
        ),
        "person_seniorities": ValuesDimension(
            "person_seniorities", "person_seniorities", tuple(config.partition_seniorities)
        ),
    }
    return [dims[name] for name in config.partition_by]


def _domain(org: dict[str, Any]) -> str | None:
    return normalize_domain(org.get("primary_domain")) or normalize_domain(org.get("website_url"))


def _raw(person: dict[str, Any]) -> dict[str, Any]:
    """The record as Apollo sent it, without the bulky nested lists."""
    raw = {k: v for k, v in person.items() if not isinstance(v, list | dict)}
    org = person.get("organization") or {}
    raw["organization"] = {k: v for k, v in org.items() if not isinstance(v, list | dict)}
    return raw


def to_lead(person: dict[str, Any]) -> LeadRecord:
    """The normalised lead; `normalize_record` drops the `email_not_unlocked@` placeholder."""
    org = person.get("organization") or {}
    size = org.get("estimated_num_employees")
    return normalize_record(
        LeadRecord(
            first_name=person.get("first_name"),
            last_name=person.get("last_name"),
            email=person.get("email"),
            title=person.get("title"),
            company_name=org.get("name"),
            company_domain=_domain(org),
            company_industry=org.get("industry"),
            company_size=None if size is None else str(size),
            linkedin_url=person.get("linkedin_url"),
            city=person.get("city"),
            state=person.get("state"),
            country=person.get("country"),
            external_id=str(person["id"]),
            raw=_raw(person),
        )
    )


class _AllOf:
    """Several windows (per minute, per hour) that must all grant a request."""

    def __init__(self, limiters: list[RateLimiter]) -> None:
        self.limiters = limiters

    def acquire(self, cost: int = 1) -> None:
        for limiter in self.limiters:
            limiter.acquire(cost)


class _Session:
    """One job's (or check's) conversation with Apollo."""

    def __init__(
        self, config: ApolloConfig, ctx: RunContext | None, *, max_attempts: int = 6
    ) -> None:
        key = config.api_key.get_secret_value()
        self.secrets = (key,)
        self.client = http.make_client(
            config.base_url.rstrip("/"), headers={"x-api-key": key}, secrets=self.secrets
        )
        self.ctx = ctx
        self.max_attempts = max_attempts
        self.search_limiters: list[RateLimiter] = []
        self.match_limiters: list[RateLimiter] = []
        if ctx is not None:
            window = config.limit_window_s
            self.search_limiters.append(
                ctx.rate_limiter("apollo:search", config.search_limit, window)
            )
            if config.search_hourly_limit is not None:
                hourly = ctx.rate_limiter("apollo:search:hour", config.search_hourly_limit, 3600)
                self.search_limiters.append(hourly)
            self.match_limiters.append(
                ctx.rate_limiter("apollo:enrich", config.enrich_limit, window)
            )

    def call(
        self,
        method: str,
        path: str,
        limiters: list[RateLimiter],
        *,
        idempotent: bool,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One API call; `idempotent` as in `request_json`: searches yes, paid matches never."""
        return request_json(
            self.client,
            method,
            path,
            provider="apollo",
            ctx=self.ctx,
            limiter=_AllOf(limiters) if limiters else None,
            max_attempts=self.max_attempts,
            secrets=self.secrets,
            idempotent=idempotent,
            **kwargs,
        )

    def search(self, filters: Filters, page: int, per_page: int) -> SearchResult[dict[str, Any]]:
        body = sent_filters(filters) | {"page": page, "per_page": per_page}
        data = self.call(
            "POST", "/mixed_people/api_search", self.search_limiters, idempotent=True, json=body
        )
        total = data.get("total_entries")
        if total is None:
            total = (data.get("pagination") or {}).get("total_entries", 0)
        return SearchResult(total=int(total), items=list(data.get("people") or []))

    def bulk_match(self, people: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], int]:
        """The people Apollo matched, by id (`matches[]` follows `details[]`, `null` where no
        one matched), and the credits spent (`credits_consumed`; else one per match)."""
        details = [{"id": p["id"]} for p in people]
        data = self.call(  # spends credits: never sent twice
            "POST",
            "/people/bulk_match",
            self.match_limiters,
            idempotent=False,
            json={"details": details},
        )
        matches = [m for m in data.get("matches") or [] if m and m.get("id") is not None]
        credits = data.get("credits_consumed")
        found = {str(m["id"]): m for m in matches}
        return found, int(credits) if credits is not None else len(found)

    def enrich(self, people: list[dict[str, Any]], allowance: int) -> Enrichment:
        """`people` with the fields of those Apollo matched laid over them; people whose search
        result says `has_email: false` are not worth a credit (`connectors.kit.enrichment`)."""
        return enrich_batches(
            people,
            allowance,
            batch_size=BULK_MATCH_SIZE,
            worth=lambda p: p.get("has_email", True) is not False,
            match=self.bulk_match,
            provider="apollo",
            what="people",
            ctx=self.ctx,
            to_lead=to_lead,
        )

    def close(self) -> None:
        self.client.close()


class ApolloConnector(Connector):
    type = "apollo"
    Config = ApolloConfig
    Params = ApolloParams

    def check(self, config: ApolloConfig) -> CheckResult:
        def probe() -> SearchResult[dict[str, Any]]:
            with closing(_Session(config, None, max_attempts=2)) as session:
                health = session.call("GET", "/auth/health", [], idempotent=True)
                if health.get("is_logged_in") is False:
                    raise AuthError("apollo does not know this api_key")
                if not health.get("healthy", False):
                    raise TransientError("apollo says it is not healthy")
                return session.search(config.default_filters.model_dump(exclude_none=True), 1, 1)

        return check_search(probe, to_lead, "people")

    def estimate(self, config: ApolloConfig, params: ApolloParams) -> Estimate:
        """One search call of one record (searches cost no credits): its match count, and at
        most one credit per match when the source enriches (capped by `max_credits`)."""
        base = job_filters(config.default_filters, params, ApolloFilters)
        with closing(_Session(config, None, max_attempts=2)) as session:
            total = session.search(base, 1, 1).total
        return search_estimate(total, enrich=config.enrich, max_credits=params.max_credits)

    def pages(
        self, config: ApolloConfig, params: ApolloParams, checkpoint: Checkpoint, ctx: RunContext
    ) -> Iterator[Page]:
        per_page = params.per_page
        with closing(_Session(config, ctx)) as session:
            yield from search_pages(
                checkpoint,
                base=job_filters(config.default_filters, params, ApolloFilters),
                fetch=lambda filters, page: session.search(filters, page, per_page),
                dimensions=dimensions(config),
                cap=min(config.max_records, config.max_pages * per_page),
                per_page=per_page,
                ctx=ctx,
                event_prefix="apollo",
                to_lead=to_lead,
                enrich=session.enrich if config.enrich else None,
                max_credits=params.max_credits,
            )
