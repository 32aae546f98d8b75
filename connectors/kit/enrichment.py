"""Paid enrichment of a search page (Apollo `/people/bulk_match`, ZoomInfo `/enrich/contact`).

Why it is shared: both providers match a page's people in small batches, spend credits per
match, and must never pay twice for the same person. `enrich_batches` is that loop; a provider
gives it one `match(batch)` call. `PageEnricher` turns an enriched page into the `Page`s the
runner commits, within the job's credit budget.

A batch can end enrichment three ways, each keeping what was already paid for:

- `TransientError` (retries spent; the call may have been processed and charged): the page is
  committed whole, the rest of it without emails, then the job fails (`enrichment_stopped`).
- `RateLimited` (a long provider wait, or a pause, cancel or shutdown during a wait; a batch that
  raises it was never processed, so it cost nothing): the people enriched so far are committed
  as a page of their own whose checkpoint says which search page to read again (`redo`: its
  filters, page number, length, and the ids already committed), then the job parks. The resumed
  job reads that search page again (searches cost no credits) and enriches only the others.
- `EnrichmentRefused` (the provider will not enrich any more, e.g. ZoomInfo's record limit):
  the page is committed, the rest without emails, and the job goes on without enriching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from connectors.base import Page, Progress, RunContext
from connectors.errors import BudgetExhausted, ConnectorError, RateLimited, TransientError
from connectors.kit.partition_walk import Plan
from records import LeadRecord

Person = dict[str, Any]
#: one paid call: the batch's matches by person id, and the credits it spent
Match = Callable[[list[Person]], tuple[dict[str, Person], int]]


class EnrichmentRefused(Exception):
    """Raised by a provider's `match` when the provider will enrich no more for this job."""


@dataclass(frozen=True, slots=True)
class Enrichment:
    """A page after enrichment: `records[:done]` went through it (all unless `error` is a
    `RateLimited`, which cut it short), `credits` spent, and the error that stopped it."""

    records: list[Person]
    credits: int
    done: int
    error: ConnectorError | None = None


def enrich_batches(
    people: list[Person],
    allowance: int,
    *,
    batch_size: int,
    worth: Callable[[Person], bool],
    match: Match,
    provider: str,
    what: str,
    ctx: RunContext | None,
    to_lead: Callable[[Person], LeadRecord] | None = None,
) -> Enrichment:
    """Match at most `allowance` of the `people` worth a credit, `batch_size` per paid call.

    Each person's enriched fields are laid over the search result; people are keyed by `id`.
    People the domain suppressed (asked through `ctx`, by what the search result already
    says: LinkedIn URL, provider id, an email when shown) are never paid for.
    """
    wanted = [p for p in people if worth(p)]
    if ctx is not None and to_lead is not None and wanted:
        flags = ctx.suppressed([to_lead(p) for p in wanted], provider)
        if any(flags):
            ctx.log.info(
                f"{provider}.enrich_skipped_suppressed",
                message=f"{sum(flags)} suppressed people not enriched",
                count=sum(flags),
            )
            wanted = [p for p, flag in zip(wanted, flags, strict=True) if not flag]
    found: dict[str, Person] = {}
    spent = 0
    done = len(people)
    error: ConnectorError | None = None
    if len(wanted) > allowance:
        # The people before the first one we cannot afford are done; the caller decides whether
        # that is the end of the job's budget (pause) or only of a soft cap (go on unenriched).
        first = wanted[allowance]
        done = next(i for i, p in enumerate(people) if p is first)
        error = BudgetExhausted(f"{provider}: the credit budget allows {allowance} more")
        wanted = wanted[:allowance]
    for start in range(0, len(wanted), batch_size):
        try:
            matched, credits = match(wanted[start : start + batch_size])
        except EnrichmentRefused:
            break
        except RateLimited as exc:  # this batch was not processed: nothing paid for it
            cut = wanted[start]
            done = next(i for i, p in enumerate(people) if p is cut)
            error = exc
            break
        except TransientError as exc:  # it may have been charged: never sent again
            error = enrichment_stopped(provider, exc, len(wanted) - start, what, ctx)
            break
        spent += credits
        found.update(matched)
    records = [{**p, **found.get(str(p["id"]), {})} for p in people]
    return Enrichment(records, spent, done, error)


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


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Where a page of a search was read: enough to read it again (`redo` in a checkpoint)."""

    filters: dict[str, Any]
    page: int
    count: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchPage:
        return cls(dict(data["filters"]), int(data["page"]), int(data["count"]))

    def to_json(self, enriched: set[str]) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "page": self.page,
            "count": self.count,
            "enriched": sorted(enriched),
        }


@dataclass
class PageEnricher:
    """Turns search pages into committed `Page`s, enriching while the budget lasts.

    `enrich(records, allowance)` spends at most `allowance` credits; `spent` counts the job's
    credits so far (they ride in every checkpoint, so a resumed job cannot overspend).
    """

    enrich: Callable[[list[Person], int], Enrichment] | None
    to_lead: Callable[[Person], LeadRecord]
    ctx: RunContext
    event_prefix: str
    #: a soft cap (the job's `max_credits`): past it the job goes on without enriching
    budget: int | None
    spent: int = 0
    #: the job's credit budget (`RunContext.credit_budget`, from the data source's budgets):
    #: past it the job pauses (`BudgetExhausted`) until the budget is raised
    hard_budget: int | None = None

    def allowance(self, wanted: int) -> tuple[int, bool]:
        """Credits this page may spend, and whether the hard budget is what limits them."""
        soft = None if self.budget is None else max(0, self.budget - self.spent)
        hard = None if self.hard_budget is None else max(0, self.hard_budget - self.spent)
        if hard is not None and (soft is None or hard < soft):
            return hard, True
        return (wanted if soft is None else soft), False

    def pages(
        self,
        records: list[Person],
        nxt: Plan,
        where: SearchPage,
        committed: Sequence[str] = (),
    ) -> Iterator[Page]:
        """The `Page`(s) for one search page read at `where`, resuming with `nxt`; people in
        `committed` (a parked page read again) were committed already and are left out.

        Raises the error that stopped enrichment once the page(s) before it are yielded (the
        runner commits a yielded page before it asks for the next one).
        """
        kept = {str(i) for i in committed}
        records = [r for r in records if str(r["id"]) not in kept]
        credits, done, error = 0, len(records), None
        allowance, hard = self.allowance(len(records))
        if records and self.enrich is not None and (allowance > 0 or hard):
            result = self.enrich(records, allowance)
            records = result.records
            credits, done, error = result.credits, result.done, result.error
            if isinstance(error, BudgetExhausted) and not hard:
                error, done = None, len(records)  # a soft cap: the rest go unenriched
            self.spent += credits
            if self.budget is not None and self.spent >= self.budget:
                self.ctx.log.warning(
                    f"{self.event_prefix}.credit_budget_spent", budget=self.budget, spent=self.spent
                )
        checkpoint = {**nxt.to_checkpoint(), "credits": self.spent}
        progress = Progress(done=nxt.done, total=nxt.total, missed=nxt.missed)
        if isinstance(error, BudgetExhausted):
            self.ctx.log.warning(
                f"{self.event_prefix}.budget_exhausted",
                message=f"credit budget of {self.hard_budget} spent: the job pauses",
                budget=self.hard_budget,
                spent=self.spent,
            )
        if isinstance(error, (RateLimited, BudgetExhausted)):
            if done:
                kept |= {str(r["id"]) for r in records[:done]}
                self.ctx.log.info(
                    f"{self.event_prefix}.enrich_parked",
                    page=where.page,
                    enriched=len(kept),
                    left=where.count - len(kept),
                )
                yield Page(
                    records=[self.to_lead(r) for r in records[:done]],
                    checkpoint={**checkpoint, "redo": where.to_json(kept)},
                    progress=replace(progress, done=nxt.done - where.count + len(kept)),
                    credits_used=credits,
                )
            raise error
        yield Page(
            records=[self.to_lead(r) for r in records],
            checkpoint=checkpoint,
            progress=progress,
            credits_used=credits,
        )
        if error is not None:
            raise error
