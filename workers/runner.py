"""The job runner (ARCHITECTURE §4): acquire, page loop, one fenced transaction per page, finish.

Every page commits its leads, provenance, row errors, log lines, counters and the checkpoint
that resumes after it in ONE transaction whose first statement is the lease fence
`UPDATE jobs ... WHERE id = :id AND lease = :lease`. A runner whose lease was taken over (the
reaper or another worker acquired the job) matches no row, writes nothing and stops. A page
fetched but not committed is fetched again after a crash; a committed page never is.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, Literal

import redis
import structlog
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from connectors.base import Connector, Page
from connectors.errors import BudgetExhausted, ConfigError, ConnectorError, RateLimited
from connectors.registry import get_connector_class
from models import (
    credits,
    domain_events,
    fair_share,
    job_states,
    jobs_repo,
    row_security,
    source_metrics,
    uploads_repo,
)
from models import leads_sink as sink
from models.job_logs import LogLine
from models.job_statuses import STOPPING_STATUSES
from records import RecordError
from runtime.crypto import decrypt_json
from runtime.logging import get_logger
from runtime.settings import Settings
from workers import search_merge
from workers.context import JobContext
from workers.enqueue import enqueue_job
from workers.joblog import JobLogBuffer
from workers.prefetch import MAX_ABANDONED_FETCHES, Prefetcher, Stalled, abandoned_fetches

_log = get_logger(__name__)
#: why the runner stops before the pages end (`Runner._may_go_on`)
Stop = Literal["fenced", "shutdown", "settle"]


def _db_down(exc: BaseException) -> bool:
    return (isinstance(exc, DBAPIError) and exc.connection_invalidated) or (
        isinstance(exc, DBAPIError) and "OperationalError" in type(exc.orig).__name__
    )


#: PostgreSQL restarts: retry the same transaction; the fence keeps a retry safe.
_db_retry = retry(
    retry=retry_if_exception(_db_down),
    wait=wait_exponential(multiplier=0.2, max=5),
    stop=stop_after_delay(90),
    reraise=True,
)


@dataclass
class _Prepared:
    connector: Connector
    config: Any
    params: Any
    campaign_id: uuid.UUID | None
    sync_state: dict[str, Any]
    credit_budget: int | None
    records_before: int


@dataclass(frozen=True)
class _Held:
    """A queued job fair share holds back (`models.fair_share.hold_back`): sent again later."""

    queue: str
    reason: str


@dataclass
class Runner:
    """Runs jobs for one worker process; its threads share it (it holds no per-job state)."""

    engine: Engine
    settings: Settings
    redis: redis.Redis | None
    shutdown: threading.Event
    #: the queues this worker serves: fair share weighs only jobs waiting for our threads
    queues: Collection[str] | None = None

    # ---- entry --------------------------------------------------------------------------------

    def run(self, job_id: uuid.UUID) -> str:
        """Run the job if we can acquire it; returns what happened (for logs and tests)."""
        moved = self._acquire(job_id)
        if isinstance(moved, _Held):
            # Back to the broker with a delay: no thread is spent waiting, no attempt counted.
            enqueue_job(job_id, moved.queue, delay_s=self._hold_delay_s())
            _log.info("job.held_back", job_id=str(job_id), reason=moved.reason)
            return "held"
        if moved is None:
            _log.info("job.not_acquired", job_id=str(job_id))
            return "not_acquired"
        structlog.contextvars.bind_contextvars(
            job_id=str(job_id),
            data_source_id=str(moved.data_source_id),
            domain_id=str(moved.domain_id),
        )
        log = JobLogBuffer()
        try:
            return self._run_acquired(moved, log)
        finally:
            structlog.contextvars.unbind_contextvars("job_id", "data_source_id", "domain_id")

    @_db_retry
    def _acquire(self, job_id: uuid.UUID) -> job_states.Moved | _Held | None:
        with Session(self.engine) as session, session.begin():
            reason = (
                "abandoned_fetches"  # this process is still freeing threads (workers.prefetch)
                if abandoned_fetches() >= MAX_ABANDONED_FETCHES
                else fair_share.hold_back(
                    session,
                    job_id,
                    max_running=self.settings.max_running_per_domain,
                    queues=self.queues,
                )
            )
            if reason is not None:
                queue = job_states.hold(session, job_id)
                return _Held(queue, reason) if queue is not None else None
            return job_states.acquire(session, job_id, self.settings.max_attempts)

    def _session(self, moved: job_states.Moved) -> Session:
        """A session acting for the job's domain: row-level security stands behind its
        queries (issue 20). Acquiring and fair share look across domains: not through this."""
        return row_security.domain_session(self.engine, moved.domain_id)

    def _hold_delay_s(self) -> float:
        """A held job is asked again after a slice (a running job of its domain may have
        handed back by then), and well within the reaper's grace (it sends no duplicate)."""
        return min(self.settings.job_slice_s, self.settings.queued_grace_s / 2)

    def _run_acquired(self, moved: job_states.Moved, log: JobLogBuffer) -> str:
        try:
            prepared = self._prepare(moved)
        except ConnectorError as exc:
            return self._finish(moved, log, error=f"{exc.code}: {exc.message}", code=exc.code)
        ctx = JobContext(
            engine=self.engine,
            redis_client=self.redis,
            settings=self.settings,
            job_id=moved.id,
            lease=moved.lease,
            domain_id=moved.domain_id,
            data_source_id=moved.data_source_id,
            sync_state=prepared.sync_state,
            credit_budget=prepared.credit_budget,
            log=log,
            shutdown=self.shutdown,
        )
        ctx.start()
        try:
            return self._loop(moved, prepared, ctx, log)
        except RateLimited as exc:
            # A wait cut short by a pause, cancel or shutdown surfaces as RateLimited too:
            # the operator's request wins over parking.
            stop = self._may_go_on(ctx)
            return self._stop(moved, log, stop) if stop else self._park(moved, log, exc)
        except Stalled as exc:
            # A hung provider or a pathological parameter: the job fails (checkpoint kept, so
            # `start` continues), the thread is ours again; the fetching thread is abandoned.
            message = (
                f"page_timeout: no page from the connector within {exc.timeout_s:g} s "
                "(DASHIN_PAGE_TIMEOUT_S)"
            )
            log.error("job.page_timeout", message=message)
            _log.warning(
                "worker.fetch_abandoned",
                alive=abandoned_fetches(),
                limit=MAX_ABANDONED_FETCHES,
            )
            return self._finish(moved, log, error=message, code="page_timeout")
        except BudgetExhausted:
            if self.shutdown.is_set():
                return self._graceful_stop(moved, log)
            if ctx.stop_reason == "fenced":
                return "fenced"
            return self._pause_budget(moved, log, prepared.credit_budget)
        except ConnectorError as exc:
            kind = "permanent" if exc.permanent else "retries exhausted"
            log.error("job.provider_error", message=f"{exc.code} ({kind}): {exc.message}")
            return self._finish(moved, log, error=f"{exc.code}: {exc.message}", code=exc.code)
        except DBAPIError:
            # The database stayed away longer than our retries: the reaper re-queues the job.
            _log.exception("job.database_unavailable")
            return "abandoned"
        except Exception as exc:
            _log.exception("job.crashed")
            log.error("job.internal_error", message=f"internal error: {type(exc).__name__}: {exc}")
            return self._finish(
                moved, log, error=f"internal error: {type(exc).__name__}", code="internal_error"
            )
        finally:
            ctx.stop()

    # ---- preparation --------------------------------------------------------------------------

    def _prepare(self, moved: job_states.Moved) -> _Prepared:
        with self._session(moved) as session:
            inputs = jobs_repo.run_inputs(session, moved.id)
            cls: type[Connector] = get_connector_class(inputs.source_type)
            params_data = dict(moved.params)
            if "file_id" in cls.Params.model_fields:
                file_id = uploads_repo.upload_for_job(
                    session,
                    domain_id=moved.domain_id,
                    data_source_id=moved.data_source_id,
                    config=inputs.source_config,
                    file_id=params_data.get("file_id"),
                )
                if file_id:
                    params_data["file_id"] = file_id
        secrets = (
            decrypt_json(self.settings.require_secret_key(), inputs.credentials)
            if inputs.credentials
            else {}
        )
        try:
            config = cls.Config.model_validate({**inputs.source_config, **secrets})
        except ValidationError as exc:
            raise ConfigError(f"data source config is invalid: {_explain(exc)}") from None
        try:
            params = cls.Params.model_validate(params_data)
        except ValidationError as exc:
            raise ConfigError(f"job params are invalid: {_explain(exc)}") from None
        with self._session(moved) as session:
            # the data source's budgets; `max_credits` in the params is the connector's own cap
            budget = credits.job_budget(session, moved.id)
        return _Prepared(
            connector=cls(),
            config=config,
            params=params,
            campaign_id=inputs.campaign_id,
            sync_state=inputs.sync_state,
            credit_budget=budget,
            records_before=inputs.records_before,
        )

    # ---- the page loop ------------------------------------------------------------------------

    def _loop(
        self, moved: job_states.Moved, prepared: _Prepared, ctx: JobContext, log: JobLogBuffer
    ) -> str:
        checkpoint = moved.checkpoint
        sync_state: dict[str, Any] | None = None
        records_seen = prepared.records_before
        log.info(
            "job.started",
            message=f"running {type(prepared.connector).type} from "
            f"{'the start' if not checkpoint else 'checkpoint'}",
            checkpoint=checkpoint,
            lease=moved.lease,
        )
        slice_end = time.monotonic() + self.settings.job_slice_s
        pages: Prefetcher[Page] = Prefetcher(
            prepared.connector.pages(prepared.config, prepared.params, checkpoint, ctx),
            size=_page_size,
            budget=BATCH_RECORDS,
            name=f"pages-{moved.id}",
            timeout_s=self.settings.page_timeout_s,
        )
        try:
            for first in pages:
                stop = self._may_go_on(ctx, page_in_hand=first)
                if stop:
                    return self._stop(moved, log, stop)
                # Small pages already fetched commit together (one transaction, one NOTIFY).
                batch = [first, *pages.take_ready(BATCH_RECORDS - _page_size(first))]
                page = merge_pages(batch)
                status, result = self._commit_page(
                    moved, prepared, log, page, checkpoint, records_seen, len(batch)
                )
                if status is None:
                    return "fenced"
                if result.inserted or result.updated:
                    # the page's search entries wait in the index's pending list: merge soon,
                    # on the merger's thread (searchable already; merged, searches stay fast)
                    search_merge.merger_for(self.engine).poke()
                records_seen += len(page.records) + len(page.errors)
                checkpoint = page.checkpoint
                if page.sync_state is not None:
                    sync_state = page.sync_state
                stop = self._may_go_on(ctx, committed_status=status)
                if stop:
                    return self._stop(moved, log, stop)
                if self._slice_used(moved, slice_end, pages):
                    return self._graceful_stop(moved, log, "yield")
        finally:
            pages.close()  # the connector releases files and connections now
        stop = self._may_go_on(ctx)
        if stop:
            return self._stop(moved, log, stop)
        for event, count in log.suppressed.items():
            log.info("log.suppressed", message=f"{count} more '{event}' debug lines not stored")
        return self._finish(moved, log, sync_state=sync_state)

    def _may_go_on(
        self,
        ctx: JobContext,
        *,
        page_in_hand: Page | None = None,
        committed_status: str | None = None,
    ) -> Stop | None:
        """The runner's one answer to "may I go on?": None, or why it must stop.

        Asked before committing a fetched page (`page_in_hand`), after committing one
        (`committed_status`, the status the commit read), and when the pages end or a wait is
        cut short (neither given):

        - `fenced`: another runner owns the job (the heartbeat saw the lease taken); write
          nothing more.
        - `shutdown`: the worker is stopping; hand the job back. Not right after a commit, and
          not before committing a page that spent credits: a page fetched (or fetched ahead)
          again would pay again, so the next turn asks again.
        - `settle`: an operator asked for a pause or cancel; the page in hand is committed
          first, then the move is finished.
        """
        if ctx.stop_reason == "fenced":
            return "fenced"
        if committed_status is not None:
            return "settle" if committed_status in STOPPING_STATUSES else None
        if self.shutdown.is_set() and (page_in_hand is None or not page_in_hand.credits_used):
            return "shutdown"
        if page_in_hand is None and ctx.stop_reason in STOPPING_STATUSES:
            return "settle"
        return None

    def _stop(self, moved: job_states.Moved, log: JobLogBuffer, stop: Stop) -> str:
        if stop == "fenced":
            return "fenced"
        if stop == "shutdown":
            return self._graceful_stop(moved, log)
        return self._settle(moved, log)

    def _slice_used(
        self, moved: job_states.Moved, slice_end: float, pages: Prefetcher[Page]
    ) -> bool:
        """Fair share: past its time slice, a job hands its thread back when another queued job
        could take it. A fetched page that spent credits is committed first (fetched again, it
        would pay again); a job whose connector has ended finishes instead."""
        if (
            time.monotonic() < slice_end
            or pages.exhausted
            or pages.any_ready(lambda p: p.credits_used > 0)
        ):
            return False
        with Session(self.engine) as session:
            return fair_share.others_waiting(
                session,
                moved.id,
                max_running=self.settings.max_running_per_domain,
                queues=self.queues,
            )

    @_db_retry
    def _commit_page(
        self,
        moved: job_states.Moved,
        prepared: _Prepared,
        log: JobLogBuffer,
        page: Page,
        checkpoint_before: dict[str, Any] | None,
        records_seen: int,
        page_count: int = 1,
    ) -> tuple[str | None, sink.SinkResult]:
        with log.flushing() as lines, self._session(moved) as session, session.begin():
            if job_states.fence(session, moved.id, moved.lease) is None:
                session.rollback()
                return None, sink.SinkResult()
            raw_conn: Any = session.connection().connection.driver_connection
            result = sink.write_page(
                raw_conn,
                domain_id=moved.domain_id,
                data_source_id=moved.data_source_id,
                job_id=moved.id,
                provider=type(prepared.connector).type,
                records=page.records,
                campaign_id=prepared.campaign_id,
            )
            errors = list(page.errors) + [_renumber(e, records_seen) for e in result.errors]
            if errors:
                jobs_repo.insert_record_errors(raw_conn, moved.id, errors)
            fetched = len(page.records) + len(page.errors)
            summary = LogLine(
                "info",
                "page.committed",
                f"page committed: {fetched} fetched, {result.inserted} new, "
                f"{result.updated} updated, {result.unchanged} unchanged, "
                f"{len(page.errors) + result.rejected} rejected",
                {
                    "lease": moved.lease,
                    "checkpoint_before": checkpoint_before,
                    "checkpoint": page.checkpoint,
                    "pages": page_count,
                    "fetched": fetched,
                    "inserted": result.inserted,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                    "rejected": len(page.errors) + result.rejected,
                    "merge_candidates": result.merge_candidates,
                },
            )
            rejected = len(page.errors) + result.rejected
            progress = page.progress
            status = job_states.record_page(
                session,
                moved.id,
                moved.lease,
                checkpoint=page.checkpoint,
                counts=job_states.PageCounts(
                    pages=page_count,
                    fetched=fetched,
                    inserted=result.inserted,
                    updated=result.updated,
                    unchanged=result.unchanged,
                    rejected=rejected,
                    credits_used=page.credits_used,
                    progress=(progress.done, progress.total, progress.missed) if progress else None,
                ),
                lines=[*lines, summary],
            )
            source_metrics.add_page_leads(session, moved.data_source_id, result.inserted)
            credits.record(
                session,
                domain_id=moved.domain_id,
                data_source_id=moved.data_source_id,
                job_id=moved.id,
                credits=page.credits_used,
            )
            if result.lead_ids:
                # one event for the whole page, last: its counter lock lasts only the commit
                domain_events.publish(
                    session,
                    moved.domain_id,
                    "lead.batch",
                    {
                        "job_id": str(moved.id),
                        "data_source_id": str(moved.data_source_id),
                        "campaign_id": str(prepared.campaign_id) if prepared.campaign_id else None,
                        "inserted": result.inserted,
                        "updated": result.updated,
                        **domain_events.ids_payload(result.lead_ids),
                    },
                )
        return status, result

    # ---- endings (each one fenced transaction) -------------------------------------------------

    @_db_retry
    def _finish(
        self,
        moved: job_states.Moved,
        log: JobLogBuffer,
        *,
        error: str | None = None,
        code: str | None = None,
        sync_state: dict[str, Any] | None = None,
    ) -> str:
        with log.flushing() as lines, self._session(moved) as session, session.begin():
            if job_states.append_log(session, moved.id, lines, lease=moved.lease) is None:
                return "fenced"
            done = job_states.finish(
                session,
                moved.id,
                moved.lease,
                error=error,
                error_code=code,
                sync_state=sync_state,
            )
        return done.status if done else "fenced"

    @_db_retry
    def _settle(self, moved: job_states.Moved, log: JobLogBuffer) -> str:
        with log.flushing() as lines, self._session(moved) as session, session.begin():
            job_states.append_log(session, moved.id, lines, lease=moved.lease)
            done = job_states.settle_after_page(session, moved.id, moved.lease)
        return done.status if done else "fenced"

    @_db_retry
    def _park(self, moved: job_states.Moved, log: JobLogBuffer, exc: RateLimited) -> str:
        with log.flushing() as lines, self._session(moved) as session, session.begin():
            job_states.append_log(session, moved.id, lines, lease=moved.lease)
            done = job_states.park_rate_limited(
                session, moved.id, moved.lease, exc.resume_at, exc.message
            )
        return done.status if done else "fenced"

    @_db_retry
    def _pause_budget(self, moved: job_states.Moved, log: JobLogBuffer, budget: int | None) -> str:
        with log.flushing() as lines, self._session(moved) as session, session.begin():
            job_states.append_log(session, moved.id, lines, lease=moved.lease)
            done = job_states.pause_budget_exhausted(session, moved.id, moved.lease, budget)
        return done.status if done else "fenced"

    def _graceful_stop(
        self, moved: job_states.Moved, log: JobLogBuffer, move: str = "graceful_stop"
    ) -> str:
        """Worker shutting down, or time slice used (`yield`): hand the job back and re-enqueue
        it at the end of its queue (our message is acked)."""
        done = self._hand_back(moved, log, move)
        if done is not None and done.status == "queued":
            enqueue_job(done.id, done.queue)
        return done.status if done else "fenced"

    @_db_retry
    def _hand_back(
        self, moved: job_states.Moved, log: JobLogBuffer, move: str
    ) -> job_states.Moved | None:
        with log.flushing() as lines, self._session(moved) as session, session.begin():
            job_states.append_log(session, moved.id, lines, lease=moved.lease)
            return job_states.graceful_stop(session, moved.id, moved.lease, move)


#: pages already fetched are committed together up to this many records
BATCH_RECORDS = 2000


def _page_size(page: Page) -> int:
    return len(page.records) + len(page.errors)


def merge_pages(batch: list[Page]) -> Page:
    """One page carrying a run of consecutive pages: the last checkpoint resumes after all."""
    if len(batch) == 1:
        return batch[0]
    last = batch[-1]
    progress = next((p.progress for p in reversed(batch) if p.progress is not None), None)
    sync_state = next((p.sync_state for p in reversed(batch) if p.sync_state is not None), None)
    return Page(
        records=[r for p in batch for r in p.records],
        errors=[e for p in batch for e in p.errors],
        checkpoint=last.checkpoint,
        progress=progress,
        credits_used=sum(p.credits_used for p in batch),
        sync_state=sync_state,
    )


def _renumber(error: RecordError, offset: int) -> RecordError:
    return replace(error, record=(error.record or 0) + offset) if error.record else error


def _explain(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()
    )
