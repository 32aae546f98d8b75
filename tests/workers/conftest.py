"""Engine fixtures: a job over the synthetic connector, and a runner built like a worker's."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models import job_states
from runtime.settings import get_settings
from tests.factories import make_domain, make_job, make_source, make_user
from workers.runner import Runner


@dataclass
class World:
    engine: Engine
    domain_id: uuid.UUID
    user_id: uuid.UUID
    source_id: uuid.UUID

    def job(self, **params: Any) -> uuid.UUID:
        return make_job(self.engine, self.domain_id, self.source_id, params, self.user_id)

    def queued_job(self, **params: Any) -> uuid.UUID:
        job_id = self.job(**params)
        with Session(self.engine) as session, session.begin():
            job_states.start(session, job_id)
        return job_id


@pytest.fixture
def world(engine: Engine, settings_env: None) -> World:
    domain = make_domain(engine)
    user = make_user(engine, domain)
    source = make_source(engine, domain, "synthetic", {"total": 1000, "page_size": 100})
    return World(engine, domain, user, source)


@pytest.fixture
def runner(engine: Engine, settings_env: None, redis_url: str) -> Iterator[Runner]:
    client = redis.Redis.from_url(redis_url)
    yield Runner(engine, get_settings(), client, threading.Event())
    client.close()
