"""What the capped-search providers (Apollo, ZoomInfo) share around a partitioned search.

`search_pages` is their whole job loop: the walk, the optional paid enrichment of each page
within the job's credit budget (spent credits ride in the checkpoint, so a resumed job cannot
overspend), and the `Page`s. `json_call` is their common reading of a provider answer: errors
typed, cut-off JSON asked for again; `check_search` their "test connection", which tells
failures apart by the error class.

The partitions themselves (dimensions, the `Plan`, the walk) are in `connectors.partition_walk`;
their names are re-exported here, the one module the providers import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from connectors.base import CheckResult, LeadRecord, Page, Progress, RunContext
from connectors.errors import ConfigError, ConnectorError, TransientError
from connectors.partition_walk import COUNTRIES as COUNTRIES
from connectors.partition_walk import Dimension as Dimension
from connectors.partition_walk import Filters as Filters
from connectors.partition_walk import Plan as Plan
from connectors.partition_walk import Range as Range
from connectors.partition_walk import RangeDimension as RangeDimension
from connectors.partition_walk import SearchResult as SearchResult
from connectors.partition_walk import ValuesDimension as ValuesDimension
from connectors.partition_walk import bisect_range as bisect_range
from connectors.partition_walk import split_partition as split_partition
from connectors.partition_walk import walk as walk

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
    enrich: Callable[[list[dict[str, Any]], int], tuple[list[dict[str, Any]], int]] | None,
    max_credits: int | None,
) -> Iterator[Page]:
    """The job loop: walk the partitions, enrich each page while credits last, yield `Page`s.

    `enrich(records, allowance)` answers the records (enriched where it could) and the credits
    it spent, at most `allowance`. The budget is the smaller of `max_credits` and the job's.
    """
    budgets = [b for b in (max_credits, ctx.credit_budget) if b is not None]
    budget = min(budgets) if budgets else None
    spent = int((checkpoint or {}).get("credits", 0))
    for records, plan in walk(
        Plan.from_checkpoint(checkpoint),
        base=base,
        fetch=fetch,
        dimensions=dimensions,
        cap=cap,
        per_page=per_page,
        ctx=ctx,
        event_prefix=event_prefix,
    ):
        credits = 0
        if records and enrich is not None and (budget is None or spent < budget):
            records, credits = enrich(records, len(records) if budget is None else budget - spent)
            spent += credits
            if budget is not None and spent >= budget:
                ctx.log.warning(f"{event_prefix}.credit_budget_spent", budget=budget, spent=spent)
        yield Page(
            records=[to_lead(r) for r in records],
            checkpoint={**plan.to_checkpoint(), "credits": spent},
            progress=Progress(done=plan.done, total=plan.total, missed=plan.missed),
            credits_used=credits,
        )


def enrichment_stopped(
    provider: str, exc: TransientError, left: int, what: str, ctx: RunContext | None
) -> TransientError:
    """The error that fails a job whose paid enrichment broke off mid-page, logged once.

    The page is committed with what was enriched (and the credits spent) before the job fails,
    so a retry never pays for the same people again; the message says how many went without.
    """
    error = TransientError(
        f"{provider} enrichment stopped: {exc}. The page was kept with "
        f"{left} {what} not enriched, so no credit is spent twice"
    )
    if ctx is not None:
        ctx.log.error(f"{provider}.enrich_failed", error=str(error))
    return error


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
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
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
