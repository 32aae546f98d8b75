"""One LISTEN connection per API process, fanned out to the open SSE streams and WebSockets.

Why one: a LISTEN connection per client would cost one PostgreSQL backend per open browser tab.
Instead a single `psycopg.AsyncConnection` listens on `job_logs`, `job_status`, `notifications`,
`domain_events` and `campaign_metrics`, and hands each notification to the subscriptions
interested in it (by channel and by the id before the `:` of the payload: a job, user, domain or
campaign id). Payloads carry ids only (ARCHITECTURE §8): a stream treats a notice as a doorbell
and re-reads the tables.

The connection starts lazily with the first subscription and reconnects when it drops. While it is
down notifications are lost, so every subscription gets a `RESYNC` notice when the connection comes
back (and on queue overflow): streams answer it by re-reading the database, which is always safe.

    listener = get_listener()
    with listener.subscribe([("job_logs", job_id), ("job_status", job_id)]) as sub:
        await listener.wait_ready(5)      # LISTEN is active: now read the DB, then wait
        notices = await sub.get(timeout=15)
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql

from runtime.logging import get_logger
from runtime.settings import get_settings, libpq_url

log = get_logger(__name__)

CHANNELS = ("job_logs", "job_status", "notifications", "domain_events", "campaign_metrics")
#: a subscription's backlog; beyond it the oldest notices are dropped and RESYNC is sent
QUEUE_SIZE = 1000
#: how long the connection may sit idle before we prove it is alive with a query
IDLE_CHECK_S = 30.0
RECONNECT_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)

Topic = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification: `key` is the id before the first `:` of the payload, `value` the rest."""

    channel: str
    key: str
    value: str


#: "notices may have been missed: re-read the database"
RESYNC = Notice("", "", "resync")


def parse(channel: str, payload: str) -> Notice:
    key, _, value = payload.partition(":")
    return Notice(channel, key, value)


class Subscription:
    """A bounded queue of notices for one stream; `get` waits for the next batch."""

    def __init__(self, topics: Iterable[Topic]) -> None:
        self.topics = tuple(topics)
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=QUEUE_SIZE)

    def push(self, notice: Notice) -> None:
        try:
            self._queue.put_nowait(notice)
        except asyncio.QueueFull:
            # A stream too slow to keep up loses detail, never correctness: it re-reads the DB.
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self._queue.put_nowait(RESYNC)

    async def get(self, timeout: float | None = None) -> list[Notice]:
        """The notices waiting now, after waiting up to `timeout` for at least one ([] if none)."""
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        notices = [first]
        while not self._queue.empty():
            notices.append(self._queue.get_nowait())
        return notices


class Listener:
    """The process's LISTEN connection and its subscriptions (bound to one event loop)."""

    def __init__(self, url: str, *, application_name: str = "dashin-api-listener") -> None:
        self._url = url
        self._application_name = application_name
        self._subs: dict[Topic, set[Subscription]] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connects = 0  # how many times LISTEN was (re)established
        self._failures = 0  # consecutive failed attempts (picks the backoff)

    @contextlib.contextmanager
    def subscribe(self, topics: Iterable[Topic]) -> Iterator[Subscription]:
        """Register a subscription for the duration of a stream; starts the listener if needed."""
        sub = Subscription(topics)
        for topic in sub.topics:
            self._subs.setdefault(topic, set()).add(sub)
        self._ensure_running()
        try:
            yield sub
        finally:
            for topic in sub.topics:
                subs = self._subs.get(topic)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[topic]

    async def wait_ready(self, timeout: float) -> bool:
        """True once LISTEN is active; False after `timeout` (the caller then polls)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._ready.clear()

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="dashin-api-listener"
            )

    def _dispatch(self, notice: Notice) -> None:
        targets: set[Subscription] = set()
        targets.update(self._subs.get((notice.channel, notice.key), ()))
        targets.update(self._subs.get((notice.channel, None), ()))
        for sub in targets:
            sub.push(notice)

    def _resync_all(self) -> None:
        for sub in {s for subs in self._subs.values() for s in subs}:
            sub.push(RESYNC)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A lost connection (psycopg.Error, OSError) is expected; anything else is a bug,
                # but streams must not hang on it either: log it and reconnect all the same.
                self._ready.clear()
                delay = RECONNECT_BACKOFF_S[min(self._failures, len(RECONNECT_BACKOFF_S) - 1)]
                self._failures += 1
                if isinstance(exc, psycopg.Error | OSError):
                    log.warning("listener.disconnected", error=str(exc), retry_in_s=delay)
                else:
                    log.error("listener.crashed", retry_in_s=delay, exc_info=exc)
                # Backoff between reconnect attempts, not synchronisation.
                await asyncio.sleep(delay)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._url,
            autocommit=True,
            application_name=self._application_name,
            connect_timeout=10,
        )
        async with conn:
            for channel in CHANNELS:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self.connects += 1
            self._failures = 0
            self._ready.set()
            if self.connects > 1:
                # Whatever happened while we were not listening is unknown: streams re-read.
                log.info("listener.reconnected", connects=self.connects)
                self._resync_all()
            while True:
                async for notify in conn.notifies(timeout=IDLE_CHECK_S):
                    self._dispatch(parse(notify.channel, notify.payload))
                await conn.execute("SELECT 1")  # idle: prove the connection is still alive


_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Listener] = (
    weakref.WeakKeyDictionary()
)


def get_listener() -> Listener:
    """The listener of the running event loop (one per API process in production).

    Keyed by loop because asyncio objects belong to one loop: test clients that start a loop per
    test each get their own, and it dies with its loop.
    """
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None:
        url = libpq_url(get_settings().require_database_url())
        listener = Listener(url)
        _listeners[loop] = listener
    return listener


async def close_listener() -> None:
    """Stop this loop's listener (an app lifespan calls it on shutdown)."""
    listener = _listeners.pop(asyncio.get_running_loop(), None)
    if listener is not None:
        await listener.close()
