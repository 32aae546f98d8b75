"""Worker-side Prometheus metrics, exposed by the worker processes themselves.

Dramatiq's own `Prometheus` middleware starts its HTTP exporter from the `dramatiq` command's
process-boot hook, which never runs here: `dashin worker` builds its `dramatiq.Worker` itself.
So this module does the equivalent, explicitly:

* `enable(port)` (the `dashin worker --metrics-port` option; call before anything imports
  `prometheus_client`) points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory. Every process of
  the pool inherits it and writes its samples to its own memory-mapped files, so counters from
  two or more processes add up instead of overwriting each other.
* `install_worker_metrics(broker)` (one line in `workers.worker.run_worker`) adds
  `WorkerMetrics`, a Dramatiq middleware counting messages, failures, in-progress messages and
  their durations per queue and actor. Without `enable` it does nothing.
* `serve(port)` runs the exporter in the pool's parent process; each scrape merges the files of
  every process, live or exited (`MultiProcessCollector`).

Fleet-wide job metrics (jobs by status, leads, pages, provider errors) come from PostgreSQL via
the API's `/metrics` (`api.metrics`); these series are about the worker processes.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import dramatiq
from dramatiq.middleware import Middleware

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600)


def enable(directory: Path | None = None) -> Path:
    """Choose (and empty) the pool's shared metrics directory; before importing prometheus.

    A directory made here is removed when this process exits (not when a forked child does),
    so runs leave nothing behind in the system's temporary directory."""
    if directory is None:
        path = Path(tempfile.mkdtemp(prefix="dashin-worker-metrics-"))
        atexit.register(_remove_if_owner, path, os.getpid())
    else:
        path = directory
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[ENV_DIR] = str(path)
    return path


def _remove_if_owner(path: Path, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        shutil.rmtree(path, ignore_errors=True)


def enabled() -> bool:
    return bool(os.environ.get(ENV_DIR))


class WorkerMetrics(Middleware):
    """Dramatiq hooks → multiprocess counters (metric objects are built in this process)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        labels = ["queue_name", "actor_name"]
        self.messages = Counter(
            "dashin_worker_messages", "Messages processed.", labels, registry=None
        )
        self.errors = Counter(
            "dashin_worker_message_errors", "Messages whose actor raised.", labels, registry=None
        )
        self.in_progress = Gauge(
            "dashin_worker_messages_inprogress",
            "Messages being processed now.",
            labels,
            registry=None,
            multiprocess_mode="livesum",
        )
        self.duration = Histogram(
            "dashin_worker_message_duration_seconds",
            "Time an actor spent on a message (one job run, until it ends or hands back).",
            labels,
            buckets=DURATION_BUCKETS,
            registry=None,
        )
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()
        atexit.register(self.mark_dead)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.in_progress.labels(message.queue_name, message.actor_name).inc()
        with self._lock:
            self._started[message.message_id] = time.monotonic()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        labels = (message.queue_name, message.actor_name)
        with self._lock:
            started = self._started.pop(message.message_id, None)
        if started is not None:
            self.duration.labels(*labels).observe(time.monotonic() - started)
            self.in_progress.labels(*labels).dec()
        self.messages.labels(*labels).inc()
        if exception is not None:
            self.errors.labels(*labels).inc()

    after_skip_message = after_process_message

    @staticmethod
    def mark_dead() -> None:
        """Drop this process's live gauges from the merged view when it exits."""
        if enabled():
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def install_worker_metrics(broker: dramatiq.Broker) -> WorkerMetrics | None:
    """Add `WorkerMetrics` to `broker` once, when `enable` chose a metrics directory."""
    if not enabled():
        return None
    for middleware in broker.middleware:
        if isinstance(middleware, WorkerMetrics):
            return middleware
    metrics = WorkerMetrics()
    broker.add_middleware(metrics)
    return metrics


def serve(port: int, host: str = "0.0.0.0") -> WSGIServer:
    """Serve the merged metrics of every process of this pool on `host:port` (a daemon thread)."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
