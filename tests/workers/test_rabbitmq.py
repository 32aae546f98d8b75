"""The same job engine over RabbitMQ (`BROKER_URL=amqp://…`) with a real worker process.

RabbitMQ is optional infrastructure: the test runs when a broker answers on 127.0.0.1:5672 and
is skipped otherwise (the Redis path is covered everywhere else).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from models import Job, Lead, job_states
from runtime.broker import make_broker, set_broker
from tests.factories import make_domain, make_job, make_source, make_user
from workers.enqueue import enqueue_job

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ROOT = Path(__file__).resolve().parents[2]


def _rabbit_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _rabbit_up(), reason="no RabbitMQ on 127.0.0.1:5672")
def test_a_job_runs_through_rabbitmq(
    engine: Engine, db_url: str, redis_url: str, settings_env: None
) -> None:
    queue = f"synthetic_{os.getpid()}"  # a queue of this test's own on the shared broker
    broker = make_broker(AMQP_URL)
    set_broker(broker)
    domain = make_domain(engine)
    user = make_user(engine, domain)
    source = make_source(engine, domain, "synthetic", {"total": 3000, "page_size": 500})
    job_id = make_job(engine, domain, source, {}, user)
    with Session(engine) as session, session.begin():
        job_states.start(session, job_id)
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        BROKER_URL=AMQP_URL,
        DASHIN_SECRET_KEY="test-secret-key-that-is-long-enough-123",
        PYTHONPATH=str(ROOT),
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers", "--queues", queue, "--threads", "1"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        enqueue_job(job_id, queue)
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            with Session(engine) as session:
                status = session.scalar(select(Job.status).where(Job.id == job_id))
            if status == "completed":
                break
            time.sleep(0.1)
        assert status == "completed"
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Lead)) == 3000
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
        broker.close()
        set_broker(None)
