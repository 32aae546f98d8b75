"""Prometheus metrics: the API's `/metrics` (fleet state + request latency) and the worker's own
exporter (`dashin worker --metrics-port`)."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models import job_states
from models.job_logs import LogLine
from runtime.broker import make_broker
from runtime.embedded import free_port
from runtime.settings import get_settings
from tests.cli.conftest import Proc, await_job_status
from tests.factories import make_domain, make_job, make_source
from workers.enqueue import enqueue_job
from workers.runner import Runner

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


@pytest.fixture
def metrics_client(settings_env: None) -> Iterator[TestClient]:
    from api import metrics
    from api.app import create_app

    app = create_app()
    if not any(getattr(r, "path", None) == "/metrics" for r in app.routes):
        app.include_router(metrics.router)  # the lines api/app.py is to gain
        metrics.install_metrics(app)
    with TestClient(app) as client:
        yield client
    from runtime.db import reset_engines

    reset_engines()


def test_metrics_report_jobs_leads_pages_provider_trouble_queue_depth_and_latency(
    metrics_client: TestClient, engine: Engine, redis_url: str
) -> None:
    # Given a completed synthetic job, an Apollo job that hit 429s and errors, and queued messages
    domain = make_domain(engine)
    synthetic = make_source(engine, domain, "synthetic", {"total": 200, "page_size": 20})
    done = make_job(engine, domain, synthetic)
    with Session(engine) as session, session.begin():
        job_states.start(session, done)
    client = redis.Redis.from_url(redis_url)
    assert Runner(engine, get_settings(), client, threading.Event()).run(done) == "completed"
    apollo = make_job(engine, domain, make_source(engine, domain, "apollo", {}))
    lines = [LogLine("info", "http.throttled", fields={"status": 429})] * 2
    lines += [LogLine("warning", "http.rate_limited", fields={"status": 429})]
    lines += [LogLine("warning", "http.rate_limited", fields={"status": 503})]
    lines += [LogLine("warning", "http.retry")] * 3 + [LogLine("error", "job.provider_error")]
    with Session(engine) as session, session.begin():
        job_states.append_log(session, apollo, lines)
    broker = make_broker(redis_url)
    for _ in range(2):
        enqueue_job(uuid.uuid4(), "synthetic", broker)
    metrics_client.get("/healthz")

    # When Prometheus scrapes
    response = metrics_client.get("/metrics")

    # Then every series holds what the database and Redis say
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert value(found, "dashin_jobs", provider="synthetic", status="completed") == 1
    assert value(found, "dashin_jobs", provider="apollo", status="pending") == 1
    assert value(found, "dashin_leads_written_total", provider="synthetic") == 200
    assert value(found, "dashin_pages_total", provider="synthetic") == 10
    assert value(found, "dashin_provider_throttled_total", provider="apollo") == 3
    assert value(found, "dashin_provider_errors_total", provider="apollo", kind="retry") == 3
    assert value(found, "dashin_provider_errors_total", provider="apollo", kind="fatal") == 1
    assert value(found, "dashin_queue_depth", queue="synthetic") == 2
    assert value(found, "dashin_queue_depth", queue="csv") == 0
    assert value(found, "dashin_job_duration_seconds_count", provider="synthetic") == 1
    assert value(found, "dashin_job_duration_seconds_bucket", provider="synthetic", le="+Inf") == 1
    latency = "dashin_api_request_duration_seconds_count"
    assert value(found, latency, method="GET", route="/healthz", status="200") == 1
    client.close()


def test_worker_serves_its_own_metrics_on_the_metrics_port(
    live_env: dict[str, str], engine: Engine, db_url: str, redis_url: str, settings_env: None
) -> None:
    # Given `dashin worker --metrics-port` serving the synthetic queue
    port = free_port()
    argv = [sys.executable, "-m", "cli.main", "worker", "--queues", "synthetic"]
    tmpdir = Path(live_env["DASHIN_HOME"]).parent / "tmp"  # its TMPDIR, to see what it leaves
    tmpdir.mkdir()
    env = {**live_env, "TMPDIR": str(tmpdir)}
    proc = Proc([*argv, "--threads", "2", "--metrics-port", str(port)], env)
    try:
        proc.wait_for("worker.ready")
        # When two jobs run through it
        domain = make_domain(engine)
        source = make_source(engine, domain, "synthetic", {"total": 40, "page_size": 20})
        jobs = [make_job(engine, domain, source) for _ in range(2)]
        broker = make_broker(redis_url)
        for job in jobs:
            with Session(engine) as session, session.begin():
                moved = job_states.start(session, job)
            enqueue_job(job, moved.queue, broker)
        for job in jobs:
            assert await_job_status(db_url, str(job), {"completed"}) == "completed"
        found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
        assert len(list(tmpdir.glob("dashin-worker-metrics-*"))) == 1  # while it runs
    finally:
        proc.stop()
    # and the stopped worker removed its metrics directory
    assert list(tmpdir.glob("dashin-worker-metrics-*")) == []
    # Then its exporter counts both messages and their durations
    labels = {"queue_name": "synthetic", "actor_name": "jobs.run"}
    assert value(found, "dashin_worker_messages_total", **labels) == 2
    assert value(found, "dashin_worker_message_duration_seconds_count", **labels) == 2
    assert value(found, "dashin_worker_message_errors_total", **labels) is None
