"""Prometheus metrics of the API process: `GET /metrics` at the root, outside `/api/v1`.

Two kinds of series, chosen so that several processes never disagree:

* **Fleet state, read at scrape time** from PostgreSQL (`models.fleet_stats`) and Redis
  (`FleetCollector`): jobs by status, leads written, pages, provider errors and 429s by
  provider, finished-job durations, queue depth. PostgreSQL is the source of truth for jobs, so
  every API replica answers the same numbers and nothing has to be summed across worker
  processes; the reads are cached for
  `CACHE_S` so a scrape every few seconds costs one set of aggregate queries.
* **API request latency**, observed in-process by `install_metrics`' middleware (time to the
  response's first byte, labelled by route template, so SSE streams count their connect time).
  With several uvicorn worker processes, set `PROMETHEUS_MULTIPROC_DIR` to an empty directory
  before the API starts: each process then writes its own files and `/metrics` merges them
  (`MultiProcessCollector`), whichever process answers the scrape.

Worker-side Dramatiq metrics are served by the workers themselves (`workers.metrics`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.backup_metrics import BackupCollector

router = APIRouter(tags=["ops"])

CACHE_S = 10.0
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: job log events the HTTP layer and the runner write, by what they mean for a provider
ERROR_EVENTS = {"http.retry": "retry", "job.provider_error": "fatal"}


@dataclass
class FleetSnapshot:
    jobs: list[tuple[str, str, int]] = field(default_factory=list)
    totals: list[tuple[str, int, int]] = field(default_factory=list)
    log_events: list[tuple[str, str, int]] = field(default_factory=list)
    durations: dict[str, tuple[list[int], float]] = field(default_factory=dict)
    queue_depth: dict[str, int] = field(default_factory=dict)


def read_snapshot() -> FleetSnapshot:
    """One consistent read of the fleet's state (a statement timeout keeps scrapes cheap)."""
    from models.fleet_stats import read_fleet
    from runtime.db import get_engine

    rows = read_fleet(get_engine())
    snap = FleetSnapshot(jobs=rows.jobs, totals=rows.totals, log_events=rows.log_events)
    for queue, value in rows.durations:
        counts, total = snap.durations.setdefault(queue, ([0] * (len(DURATION_BUCKETS) + 1), 0.0))
        for i, bound in enumerate(DURATION_BUCKETS):
            if value <= bound:
                counts[i] += 1
        counts[-1] += 1
        snap.durations[queue] = (counts, total + value)
    snap.queue_depth = read_queue_depth(sorted({q for q, _, _ in snap.jobs}))
    return snap


def read_queue_depth(known: list[str]) -> dict[str, int]:
    """Messages waiting per queue: Redis `LLEN dramatiq:<queue>`, or RabbitMQ's own count."""
    from connectors.registry import available
    from runtime.settings import get_settings

    settings = get_settings()
    queues = sorted({cls.queue_name() for cls in available().values()} | set(known))
    broker_url = settings.effective_broker_url()
    if broker_url.startswith(("amqp://", "amqps://")):
        from runtime.broker import get_broker

        broker: Any = get_broker()
        return {q: int(broker.get_queue_message_counts(q)[0]) for q in queues}
    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(f"dramatiq:{queue}")
        return {q: int(n) for q, n in zip(queues, pipe.execute(), strict=True)}
    finally:
        client.close()


class FleetCollector(Collector):
    """Series computed from PostgreSQL and Redis at scrape time, cached for `cache_s`."""

    def __init__(self, cache_s: float = CACHE_S) -> None:
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: tuple[float, FleetSnapshot] | None = None

    def snapshot(self) -> FleetSnapshot:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self.cache_s:
                self._cached = (now, read_snapshot())
            return self._cached[1]

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self.snapshot()))

    def _families(self, snap: FleetSnapshot) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("dashin_jobs", "Jobs by status.", labels=["provider", "status"])
        for queue, status, count in snap.jobs:
            jobs.add_metric([queue, status], count)
        yield jobs
        written = CounterMetricFamily(
            "dashin_leads_written", "Leads inserted or updated by jobs.", labels=["provider"]
        )
        pages = CounterMetricFamily("dashin_pages", "Pages committed by jobs.", labels=["provider"])
        for queue, leads, page_count in snap.totals:
            written.add_metric([queue], leads)
            pages.add_metric([queue], page_count)
        yield written
        yield pages
        errors = CounterMetricFamily(
            "dashin_provider_errors",
            "Provider failures: retried transient errors, and fatal ones that failed a job.",
            labels=["provider", "kind"],
        )
        throttled = CounterMetricFamily(
            "dashin_provider_throttled", "HTTP 429 answers from providers.", labels=["provider"]
        )
        per_queue_429: dict[str, int] = {}
        for queue, event, count in snap.log_events:
            if event in ERROR_EVENTS:
                errors.add_metric([queue, ERROR_EVENTS[event]], count)
            else:
                per_queue_429[queue] = per_queue_429.get(queue, 0) + count
        for queue, count in per_queue_429.items():
            throttled.add_metric([queue], count)
        yield errors
        yield throttled
        durations = HistogramMetricFamily(
            "dashin_job_duration_seconds",
            "Finished jobs: seconds from first start to the end.",
            labels=["provider"],
        )
        for queue, (counts, total) in snap.durations.items():
            bounds = [str(b) for b in DURATION_BUCKETS] + ["+Inf"]
            durations.add_metric([queue], list(zip(bounds, map(float, counts), strict=True)), total)
        yield durations
        depth = GaugeMetricFamily(
            "dashin_queue_depth", "Messages waiting in each queue.", labels=["queue"]
        )
        for queue, count in snap.queue_depth.items():
            depth.add_metric([queue], count)
        yield depth


class LatencyMiddleware:
    """Observes seconds to the first response byte, per method, route template and status."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                self.histogram.labels(scope["method"], route, str(message["status"])).observe(
                    time.perf_counter() - started
                )
            await send(message)

        await self.app(scope, receive, timed_send)


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def build_registry(latency: Histogram | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if _multiprocess():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    elif latency is not None:
        registry.register(latency)
    registry.register(FleetCollector())
    registry.register(BackupCollector())
    return registry


def install_metrics(app: FastAPI) -> None:
    """Add the latency middleware and the registry `/metrics` serves (call once per app)."""
    latency = Histogram(
        "dashin_api_request_duration_seconds",
        "API request latency to the first response byte.",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=None,
    )
    app.add_middleware(LatencyMiddleware, histogram=latency)
    app.state.metrics_registry = build_registry(latency)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:  # router mounted without install_metrics: fleet state only
        registry = request.app.state.metrics_registry = build_registry(None)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
