"""The declarative configuration of the `generic_api` connector and the requests it implies.

The models here are the operator's whole vocabulary (see `.connector`); turning a configuration
into an HTTP client (headers, auth) and into each page's URL and body lives next to them, so
the connector module is left with the paging loop and the mapping of answers.

Secrets sit in top-level `SecretStr` fields and maps (`bearer_token`, `api_key`, `basic_password`,
`secret_headers`, `secret_params`) so the platform encrypts them and never echoes them back.
Every request goes through the shared HTTP layer: retries honouring `Retry-After`, the SSRF guard
(private, loopback and link-local targets refused unless the operator allows them), redaction.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorConfig, ConnectorParams
from connectors.kit import http
from connectors.providers.generic_api.jsonpath import parse_path
from records import LEAD_FIELDS


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoPagination(_Part):
    type: Literal["none"] = "none"


class PagePagination(_Part):
    """`?page=N&size=M`; the last page is the first one shorter than `page_size`."""

    type: Literal["page"] = "page"
    page_param: str = "page"
    size_param: str = "size"
    page_size: int = Field(100, ge=1, le=10_000)
    start_page: int = Field(1, ge=0)


class OffsetPagination(_Part):
    """`?offset=N&limit=M`; the last page is the first one shorter than `limit`."""

    type: Literal["offset"] = "offset"
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(100, ge=1, le=10_000)


class CursorPagination(_Part):
    """The next page's token sits at `cursor_path` in the body; none (or empty) ends the run."""

    type: Literal["cursor"] = "cursor"
    cursor_param: str = "cursor"
    cursor_path: str = "next_cursor"
    size_param: str | None = None
    page_size: int | None = Field(None, ge=1, le=10_000)


class LinkPagination(_Part):
    """The next page's URL is in the `Link: <...>; rel="next"` header (RFC 5988)."""

    type: Literal["link"] = "link"
    size_param: str | None = None
    page_size: int | None = Field(None, ge=1, le=10_000)


Pagination = Annotated[
    NoPagination | PagePagination | OffsetPagination | CursorPagination | LinkPagination,
    Field(discriminator="type"),
]


class RateLimit(_Part):
    requests: int = Field(ge=1)
    period_s: float = Field(gt=0)


class Incremental(_Part):
    """Send the newest `updated_at_path` value seen by the last run as query param `param`."""

    param: str = "updated_since"
    updated_at_path: str = "updated_at"
    #: the value for the very first run (none: fetch everything)
    initial: str | None = None


class Billing(_Part):
    """What the API charges for an answer (issue 19): booked in the credit ledger with the page
    it paid for, counted against the source's budgets. `credits_path` reads what the answer says
    it charged (e.g. `meta.credits_charged`) and wins when it holds a whole number; otherwise a
    page costs `credits_per_request` per answered request plus `credits_per_record` per record."""

    credits_per_request: int = Field(0, ge=0, le=1_000_000)
    credits_per_record: int = Field(0, ge=0, le=1_000_000)
    credits_path: str | None = None

    @field_validator("credits_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None:
            parse_path(value)
        return value

    @model_validator(mode="after")
    def _charges_something(self) -> Billing:
        if not (self.credits_per_request or self.credits_per_record or self.credits_path):
            raise ValueError(
                "billing needs credits_per_request, credits_per_record or credits_path"
            )
        return self


class GenericApiConfig(ConnectorConfig):
    url: str = Field(description="absolute http(s) URL of the first page")
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, SecretStr] = Field(default_factory=dict)
    secret_params: dict[str, SecretStr] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    auth: Literal["none", "bearer", "api_key", "basic"] = "none"
    bearer_token: SecretStr | None = None
    api_key: SecretStr | None = None
    api_key_name: str = "X-API-Key"
    api_key_in: Literal["header", "query"] = "header"
    basic_username: str | None = None
    basic_password: SecretStr | None = None
    records_path: str = Field("", description="dotted path to the record list; empty = the body")
    pagination: Pagination = Field(default_factory=NoPagination)
    #: where pagination parameters go: the query string, or the JSON body (POST)
    pagination_in: Literal["query", "body"] = "query"
    field_map: dict[str, str] = Field(
        default_factory=dict, description="lead field → record path; empty = same-named keys"
    )
    external_id_path: str | None = "id"
    #: dotted path to the total record count; when set, pages are checked against it (an empty
    #: or short page before the end is asked for again instead of ending the run early)
    total_path: str | None = None
    rate_limit: RateLimit | None = None
    #: the API is paid per call or per record: its credits go to the ledger and the budgets
    billing: Billing | None = None
    incremental: Incremental | None = None
    timeout_s: float = Field(30.0, gt=0, le=300)
    idempotent: bool = Field(
        True,
        description="a page request only reads, so one that timed out or failed after reaching "
        "the API may be sent again; false for an API that charges or acts per call",
    )

    @field_validator("url")
    @classmethod
    def _absolute_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @field_validator("field_map")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(LEAD_FIELDS))
        if unknown:
            raise ValueError(f"unknown lead field(s) {unknown}; known: {list(LEAD_FIELDS)}")
        for path in value.values():
            parse_path(path)
        return value

    @model_validator(mode="after")
    def _auth_complete(self) -> GenericApiConfig:
        needed = {
            "bearer": ("bearer_token",),
            "api_key": ("api_key",),
            "basic": ("basic_username", "basic_password"),
        }
        missing = [name for name in needed.get(self.auth, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"auth {self.auth!r} needs {', '.join(missing)}")
        if self.pagination_in == "body" and self.method != "POST":
            raise ValueError("pagination_in 'body' needs method POST")
        for path in (self.records_path, self.external_id_path or "", self.total_path or ""):
            parse_path(path)
        return self

    def secret_values(self) -> tuple[str, ...]:
        found = [self.bearer_token, self.api_key, self.basic_password]
        found += [*self.secret_headers.values(), *self.secret_params.values()]
        return tuple(s.get_secret_value() for s in found if s is not None and s.get_secret_value())


class GenericApiParams(ConnectorParams):
    #: ignore the data source's sync_state and fetch from `incremental.initial`
    full_refresh: bool = False


def request_parts(
    config: GenericApiConfig, position: Any, since: Any
) -> tuple[httpx.URL, dict[str, Any] | None]:
    """The URL (with query) and JSON body of the request for `position`."""
    pag = config.pagination
    paging: dict[str, Any] = {}
    if isinstance(pag, PagePagination):
        paging = {pag.page_param: pag.start_page if position is None else position}
        paging[pag.size_param] = pag.page_size
    elif isinstance(pag, OffsetPagination):
        paging = {pag.offset_param: position or 0, pag.limit_param: pag.limit}
    elif isinstance(pag, CursorPagination):
        if pag.size_param and pag.page_size:
            paging[pag.size_param] = pag.page_size
        if position is not None:
            paging[pag.cursor_param] = position
    elif isinstance(pag, LinkPagination) and position is None and pag.size_param and pag.page_size:
        paging[pag.size_param] = pag.page_size  # later links carry their own size
    query: dict[str, Any] = {}
    if isinstance(pag, LinkPagination) and position is not None:
        url = httpx.URL(str(position))  # the link carries the query of the next page
    else:
        url = httpx.URL(config.url)
        query.update(config.params)
        if config.incremental is not None and since is not None:
            query[config.incremental.param] = since
    query.update({k: v.get_secret_value() for k, v in config.secret_params.items()})
    if config.auth == "api_key" and config.api_key is not None and config.api_key_in == "query":
        query[config.api_key_name] = config.api_key.get_secret_value()
    body = dict(config.body or {}) if config.method == "POST" else None
    if body is not None and config.pagination_in == "body":
        body.update(paging)
    else:
        query.update(paging)
    return url.copy_merge_params(query), body


def build_client(config: GenericApiConfig, transport: httpx.BaseTransport | None) -> httpx.Client:
    headers = {"Accept": "application/json", **config.headers}
    headers.update({k: v.get_secret_value() for k, v in config.secret_headers.items()})
    auth: httpx.Auth | None = None
    if config.auth == "bearer" and config.bearer_token is not None:
        headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
    elif config.auth == "api_key" and config.api_key is not None and config.api_key_in == "header":
        headers[config.api_key_name] = config.api_key.get_secret_value()
    elif config.auth == "basic" and config.basic_password is not None:
        password = config.basic_password.get_secret_value()
        auth = httpx.BasicAuth(config.basic_username or "", password)
    return http.make_client(
        headers=headers,
        auth=auth,
        timeout=config.timeout_s,
        secrets=config.secret_values(),
        transport=transport,
    )
