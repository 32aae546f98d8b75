"""Dramatiq broker factory: Redis by default, RabbitMQ when `BROKER_URL` is `amqp://`.

Built explicitly (never Dramatiq's process-global default at import time) and made the global
broker only by the process that asks for it, so actors and enqueues agree on one instance.
The queue carries only job ids: PostgreSQL is the source of truth, the broker is a doorbell.
"""

from __future__ import annotations

import threading

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    TimeLimit,
)

from runtime.settings import get_settings

_lock = threading.Lock()
_broker: dramatiq.Broker | None = None


def make_broker(url: str) -> dramatiq.Broker:
    middleware = [
        AgeLimit(),
        TimeLimit(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=0),
        CurrentMessage(),
    ]
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=middleware)
    # A SIGKILLed worker's unacked messages come back only after `heartbeat_timeout`; the
    # reaper does not depend on it, but a shorter timeout lets Redis help too.
    return RedisBroker(  # type: ignore[no-untyped-call]
        url=url, middleware=middleware, heartbeat_timeout=15_000
    )


def get_broker() -> dramatiq.Broker:
    """This process's broker, created on first use and installed as Dramatiq's global."""
    global _broker
    with _lock:
        if _broker is None:
            _broker = make_broker(get_settings().effective_broker_url())
            dramatiq.set_broker(_broker)
        return _broker


def set_broker(broker: dramatiq.Broker | None) -> None:
    """Install a specific broker (tests: a StubBroker or a broker on a test Redis)."""
    global _broker
    with _lock:
        _broker = broker
        if broker is not None:
            dramatiq.set_broker(broker)
