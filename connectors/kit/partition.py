"""What the capped-search providers (Apollo, ZoomInfo) share around a partitioned search.

`search_pages` is their whole job loop: the walk, the optional paid enrichment of each page
within the job's credit budget (spent credits ride in the checkpoint, so a resumed job cannot
overspend; a park mid-enrichment keeps what was paid for: `connectors.kit.enrichment`), and the
`Page`s. `json_call` is their common reading of a provider answer: errors
typed, cut-off JSON asked for again; `check_search` their "test connection", which tells
failures apart by the error class.

The partitions themselves (dimensions, the `Plan`, the walk) are in `connectors.kit.partition_walk`;
their names are re-exported here, the one module the providers import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import httpx
from pydantic import BaseModel

from connectors.base import CheckResult, Estimate, Page, RateLimiter, RunContext
from connectors.errors import ConfigError, ConnectorError, TransientError
from connectors.kit import http
from connectors.kit.enrichment import Enrichment as Enrichment
from connectors.kit.enrichment import EnrichmentRefused as EnrichmentRefused
from connectors.kit.enrichment import PageEnricher, SearchPage
from connectors.kit.enrichment import enrich_batches as enrich_batches
from connectors.kit.enrichment import enrichment_stopped as enrichment_stopped
from connectors.kit.partition_walk import COUNTRIES as COUNTRIES
from connectors.kit.partition_walk import Dimension as Dimension
from connectors.kit.partition_walk import Filters as Filters
from connectors.kit.partition_walk import Plan as Plan
from connectors.kit.partition_walk import Range as Range
from connectors.kit.partition_walk import RangeDimension as RangeDimension
from connectors.kit.partition_walk import SearchResult as SearchResult
from connectors.kit.partition_walk import ValuesDimension as ValuesDimension
from connectors.kit.partition_walk import bisect_range as bisect_range
from connectors.kit.partition_walk import split_partition as split_partition
from connectors.kit.partition_walk import walk as walk
from records import LeadRecord

MALFORMED_RETRIES = 3


def search_pages(
    checkpoint: dict[str, Any] | None,
    *,
    base: Filters,
    fetch: Callable[[Filters, int], SearchResult[dict[str, Any]]],
    dimensions: Sequence[Dimension],
    cap: int,
    per_page: int,
    ctx: RunContext,
    event_prefix: str,
    to_lead: Callable[[dict[str, Any]], LeadRecord],
    enrich: Callable[[list[dict[str, Any]], int], Enrichment] | None,
    max_credits: int | None,
    counts_end_paging: bool = True,
) -> Iterator[Page]:
    """The job loop: walk the partitions, enrich each page while credits last, yield `Page`s.

    `enrich(records, allowance)` (usually `enrich_batches`) spends at most `allowance` credits.
    `max_credits` caps enrichment (the job goes on without it); the job's credit budget
    (`ctx.credit_budget`) pauses the job when spent (`BudgetExhausted`). A checkpoint with
    `redo` was written when a park cut a page's enrichment short: that search page is read
    again first, without the people already committed (`connectors.kit.enrichment`).
    `counts_end_paging`: see `walk` (False: only a short or empty page, or `cap`, ends a
    partition).
    """
    enricher = PageEnricher(
        enrich,
        to_lead,
        ctx,
        event_prefix,
        budget=max_credits,
        spent=int((checkpoint or {}).get("credits", 0)),
        hard_budget=ctx.credit_budget,
    )
    plan = Plan.from_checkpoint(checkpoint)
    redo = (checkpoint or {}).get("redo")
    if redo:
        where = SearchPage.from_json(redo)
        items = fetch(where.filters, where.page).items[: where.count]
        yield from enricher.pages(items, plan, where, committed=redo.get("enriched") or ())
    read: list[SearchPage] = []

    def fetch_page(filters: Filters, page: int) -> SearchResult[dict[str, Any]]:
        result = fetch(filters, page)
        read[:] = [SearchPage(filters, page, len(result.items))]
        return result

    for records, nxt in walk(
        plan,
        base=base,
        fetch=fetch_page,
        dimensions=dimensions,
        cap=cap,
        per_page=per_page,
        ctx=ctx,
        event_prefix=event_prefix,
        counts_end_paging=counts_end_paging,
    ):
        # the walk yields a page right after reading it, so `read` says where it was read
        where = replace(read[0], count=len(records)) if read else SearchPage({}, 0, 0)
        yield from enricher.pages(records, nxt, where)


def sent_filters(filters: Filters) -> Filters:
    """The filters a search sends: unset ones (None, empty) are left out."""
    return {k: v for k, v in filters.items() if v not in (None, [], "")}


def job_filters(defaults: BaseModel, params: BaseModel, fields: type[BaseModel]) -> Filters:
    """The source's default filters with the job's own (`fields` of `params`) laid over them."""
    return {
        **defaults.model_dump(exclude_none=True),
        **params.model_dump(include=set(fields.model_fields), exclude_none=True),
    }


def search_estimate(total: int, *, enrich: bool, max_credits: int | None) -> Estimate:
    """A search's match count, and at most one credit per match when the source enriches
    (capped by `max_credits`); the search itself costs no credits."""
    credits = total if enrich else 0
    if max_credits is not None:
        credits = min(credits, max_credits)
    return Estimate(matches=total, credits=credits)


def request_json(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    provider: str,
    ctx: RunContext | None,
    limiter: RateLimiter | None,
    max_attempts: int,
    secrets: tuple[str, ...],
    idempotent: bool,
    seen: Callable[[httpx.Response], None] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """One provider call through `http.request`, read by `json_call`; `seen` looks at every
    answer first (a header the provider sends on each). `idempotent`: may a call the provider
    may have processed (a read timeout, a 5xx, a cut-off body) be sent again? Searches yes,
    paid enrichment never."""

    def send() -> httpx.Response:
        response = http.request(
            client,
            method,
            path,
            ctx=ctx,
            limiter=limiter,
            max_attempts=max_attempts,
            secrets=secrets,
            idempotent=idempotent,
            **kwargs,
        )
        if seen is not None:
            seen(response)
        return response

    return json_call(send, provider=provider, path=path, ctx=ctx, idempotent=idempotent)


def json_call(
    send: Callable[[], httpx.Response],
    *,
    provider: str,
    path: str,
    ctx: RunContext | None,
    idempotent: bool = True,
) -> dict[str, Any]:
    """The JSON object a provider answered through `send()` (an `http.request` call).

    400/404/405/422 are `ConfigError` (bad filters or base_url), other errors `TransientError`.
    A body that is not a JSON object is asked for again, unless the call is not `idempotent` (the
    provider processed it: asking again could spend credits twice); outside a job (`check`) it
    means the base_url is not the provider's.
    """
    for _ in range(MALFORMED_RETRIES if idempotent else 1):
        response = send()
        if response.status_code in (400, 404, 405, 422):
            detail = response.text[:200]
            raise ConfigError(f"{provider} {path} answered {response.status_code}: {detail}")
        if response.is_error:
            raise TransientError(f"{provider} {path} answered {response.status_code}")
        body = http.json_object(response)
        if body is not None:
            return body
        if ctx is None:
            raise ConfigError(f"{provider} {path} did not answer a JSON object: check base_url")
        ctx.log.warning(f"{provider}.malformed_response", path=path)
    if not idempotent:
        raise TransientError(
            f"{provider} {path}: malformed JSON answer; not asked again because the call is "
            f"not idempotent (it may have spent credits)"
        )
    raise TransientError(f"{provider} {path}: malformed JSON {MALFORMED_RETRIES} times")


def check_search(
    probe: Callable[[], SearchResult[dict[str, Any]]],
    to_lead: Callable[[dict[str, Any]], LeadRecord],
    noun: str,
) -> CheckResult:
    """Run a one-record `probe` search; its error class names the reason it failed."""
    try:
        result = probe()
    except ConnectorError as exc:
        return CheckResult(ok=False, reason=exc.reason, message=str(exc))  # type: ignore[arg-type]
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        return CheckResult(ok=False, reason="bad_config", message=str(exc))
    sample = [to_lead(r) for r in result.items[:5]]
    return CheckResult(ok=True, message=f"{result.total} {noun} match", sample=sample)
