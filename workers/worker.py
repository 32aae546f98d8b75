"""Worker processes: `dashin worker --queues apollo,csv --processes N --threads M`.

Each process builds its own engine, Redis client and broker, declares the queues it serves and
runs a Dramatiq `Worker` with a short consumer poll (100 ms instead of 1 s: idle workers pick up
a job fast). SIGTERM/SIGINT start a graceful stop: running jobs hand themselves back
(`running → queued` and re-enqueued) after abandoning their current, uncommitted page.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Sequence
from types import FrameType

import dramatiq
import redis

from connectors.registry import available
from runtime.broker import get_broker
from runtime.db import make_engine
from runtime.logging import configure_logging, get_logger
from runtime.sentry import init_sentry
from runtime.settings import get_settings
from workers.actors import register_actors
from workers.enqueue import OUTBOX_ACTORS, install_doorbell
from workers.mail import TIME_LIMIT_S as MAIL_TIME_LIMIT_S
from workers.mail import MailSender
from workers.metrics import install_worker_metrics
from workers.outbox import outbox_actor
from workers.runner import Runner
from workers.webhooks import WebhookSender

_log = get_logger(__name__)


def default_queues() -> list[str]:
    """Every connector's queue, plus the outbox queues (webhook deliveries, mail)."""
    outbox = {queue for _, queue in OUTBOX_ACTORS.values()}
    return sorted({cls.queue_name() for cls in available().values()} | outbox)


def run_worker(
    queues: Sequence[str] | None = None,
    threads: int = 4,
    *,
    stop: threading.Event | None = None,
    install_signals: bool = True,
) -> None:
    settings = get_settings()
    configure_logging(settings)
    engine = make_engine(
        settings.require_database_url(), pool_size=threads + 2, application_name="dashin-worker"
    )
    redis_client = redis.Redis.from_url(settings.require_redis_url())
    shutdown = threading.Event()
    stop = stop or threading.Event()
    init_sentry(settings, component="worker")
    broker = get_broker()
    install_worker_metrics(broker)  # no-op unless `dashin worker --metrics-port` enabled it
    # fair share weighs the jobs waiting in the queues this worker serves (docs/jobs.md)
    served = list(queues or default_queues())
    register_actors(broker, Runner(engine, settings, redis_client, shutdown, served))
    webhooks = WebhookSender(engine, settings)
    outbox_actor(broker, "webhook", webhooks.deliver, webhooks.time_limit_s)
    outbox_actor(broker, "mail", MailSender(engine, settings).send, MAIL_TIME_LIMIT_S)
    install_doorbell()  # outbox rows written here (job events) are enqueued after commit
    names = served
    for name in names:
        broker.declare_queue(name)

    if install_signals:

        def _on_signal(signum: int, _frame: FrameType | None) -> None:
            _log.info("worker.stopping", signal=signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    worker = dramatiq.Worker(broker, queues=set(names), worker_threads=threads, worker_timeout=100)
    # Jobs run for minutes to hours: a message prefetched behind a busy thread would wait for
    # it (Dramatiq's default holds 2 per thread). Hold no more than we can run.
    worker.queue_prefetch = threads
    worker.start()
    _log.info("worker.ready", queues=names, threads=threads)
    stop.wait()
    shutdown.set()  # running jobs hand themselves back after their current page
    worker.stop(timeout=60_000)
    webhooks.close()
    broker.close()
    engine.dispose()
    _log.info("worker.stopped")


def _child(queues: list[str] | None, threads: int) -> None:
    run_worker(queues, threads)


def run_worker_pool(queues: Sequence[str] | None, processes: int, threads: int) -> None:
    if processes <= 1:
        run_worker(queues, threads)
        return
    ctx = multiprocessing.get_context("spawn")
    children = [
        ctx.Process(target=_child, args=(list(queues) if queues else None, threads), daemon=False)
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    stopping = threading.Event()

    def _forward(signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        for child in children:
            if child.is_alive() and child.pid:
                import os

                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    for child in children:
        child.join()
