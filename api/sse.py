"""The two Server-Sent-Event streams: one job's log lines, and a domain's live feed (`api.live`).

Both follow one rule: a notification is only a doorbell, the database is the truth. A log stream
subscribes first, waits for LISTEN to be active, then reads lines after its cursor; each wake-up
reads again from the cursor. Lines are numbered by a commit-ordered per-job `seq`, and the SSE id
of each event is that `seq`, so resuming from `Last-Event-ID` can neither skip nor repeat a line.

Closing: the job's status is read *before* its lines in the same transaction. The terminal move
commits together with its own last log line, so once a terminal status has been read, the lines
read after it include everything the job will ever write — the stream then ends.

Access: a stream outlives the request that opened it, so it re-checks its caller (`allowed`, the
same credentials run through authentication again) in the transaction of every read, and at
least every `RECHECK_S` while idle. When the key is revoked, the session ended, the password
changed or the membership removed, the stream sends a last `revoked` event and ends.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session
from sse_starlette import ServerSentEvent

from api import live
from api.db_threads import run_db
from api.listener import get_listener
from api.live import LiveEvent
from api.schemas.logs import LogLineOut
from models import job_logs, jobs_query
from models.job_statuses import TERMINAL_STATUSES
from runtime.errors import NotFound

#: lines read per query; a stream catching up reads batch after batch without waiting
BATCH = 500
#: keep-alive comment interval (proxies drop idle connections)
KEEPALIVE_S = 15.0
#: re-read even without a notification (covers notifications lost while reconnecting)
POLL_S = 30.0
#: how long a new stream waits for LISTEN before it relies on polling alone
READY_TIMEOUT_S = 5.0
#: an idle stream re-checks its caller's access at least this often
RECHECK_S = 5.0

#: whether the stream's caller may still read it, run in the transaction of each read
AccessCheck = Callable[[Session], bool]


def revoked_event() -> ServerSentEvent:
    """The last event of a stream whose caller lost access; the client should not reconnect."""
    return ServerSentEvent(data=json.dumps({"reason": "access revoked"}), event="revoked")


@dataclass(frozen=True)
class _LogRead:
    status: str | None  # None: the job is gone
    lines: list[LogLineOut]
    revoked: bool = False


async def log_events(
    job_id: uuid.UUID,
    domain_id: uuid.UUID,
    after_seq: int,
    level: str | None,
    allowed: AccessCheck,
) -> AsyncIterator[ServerSentEvent]:
    """Every line after `after_seq`, then new ones as they commit; ends once the job is over,
    or with `revoked` once the caller lost access."""
    listener = get_listener()
    topics = [("job_logs", str(job_id)), ("job_status", str(job_id))]
    with listener.subscribe(topics) as sub:
        await listener.wait_ready(READY_TIMEOUT_S)
        cursor = after_seq
        read_due = True
        poll_at = 0.0
        while True:
            if read_due:
                read = await run_db(
                    partial(
                        _read_job_logs,
                        job=job_id,
                        domain=domain_id,
                        after=cursor,
                        level=level,
                        allowed=allowed,
                    )
                )
                if read.revoked:
                    yield revoked_event()
                    return
                for line in read.lines:
                    yield ServerSentEvent(
                        data=line.model_dump_json(), event="log", id=str(line.seq)
                    )
                    cursor = line.seq
                if len(read.lines) == BATCH:
                    continue  # more lines are waiting: no need to be woken
                if read.status is None or read.status in TERMINAL_STATUSES:
                    yield ServerSentEvent(
                        data=json.dumps({"job_id": str(job_id), "status": read.status}),
                        event="end",
                    )
                    return
                poll_at = time.monotonic() + POLL_S
            elif not await run_db(allowed):
                yield revoked_event()
                return
            wait = min(RECHECK_S, max(0.0, poll_at - time.monotonic()))
            notices = await sub.get(timeout=wait)
            read_due = bool(notices) or time.monotonic() >= poll_at


def _read_job_logs(
    session: Session,
    *,
    job: uuid.UUID,
    domain: uuid.UUID,
    after: int,
    level: str | None,
    allowed: AccessCheck,
) -> _LogRead:
    """Access, then status, then lines, in one transaction (see the module docstring for why)."""
    if not allowed(session):
        return _LogRead(None, [], revoked=True)
    try:
        status = jobs_query.job_status(session, job, domain)
    except NotFound:
        return _LogRead(None, [])
    lines = job_logs.tail(session, job, after_seq=after, min_level=level, limit=BATCH)
    return _LogRead(status, [LogLineOut.build(line) for line in lines])


def live_event(event: LiveEvent) -> ServerSentEvent:
    """A live feed event as SSE; log events keep their `seq` as the SSE id (`Last-Event-ID`)."""
    return ServerSentEvent(data=event.json_data(), event=event.event, id=event.id)


async def domain_events(
    user_id: uuid.UUID,
    domain_id: uuid.UUID,
    allowed: AccessCheck,
    after_seq: int | None,
    clients: tuple[uuid.UUID, ...] | None = None,
    *,
    restricted: bool = False,
) -> AsyncIterator[ServerSentEvent]:
    """The domain's live feed (`api.live`) as Server-Sent Events."""
    feed = live.domain_feed(user_id, domain_id, allowed, after_seq, clients, restricted)
    async for event in feed:
        yield live_event(event)
