"""The two Server-Sent-Event streams: one job's log lines, and a user's live events.

Both follow one rule: a notification is only a doorbell, the database is the truth. A log stream
subscribes first, waits for LISTEN to be active, then reads lines after its cursor; each wake-up
reads again from the cursor. Lines are numbered by a commit-ordered per-job `seq`, and the SSE id
of each event is that `seq`, so resuming from `Last-Event-ID` can neither skip nor repeat a line.

Closing: the job's status is read *before* its lines in the same transaction. The terminal move
commits together with its own last log line, so once a terminal status has been read, the lines
read after it include everything the job will ever write — the stream then ends.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session
from sse_starlette import ServerSentEvent

from api.db_threads import run_db
from api.listener import RESYNC, Notice, get_listener
from api.schemas.logs import LogLineOut
from models import job_logs, jobs_query, notifications_query
from models.jobs import TERMINAL_STATUSES
from runtime.errors import NotFound

#: lines read per query; a stream catching up reads batch after batch without waiting
BATCH = 500
#: keep-alive comment interval (proxies drop idle connections)
KEEPALIVE_S = 15.0
#: re-read even without a notification (covers notifications lost while reconnecting)
POLL_S = 30.0
#: how long a new stream waits for LISTEN before it relies on polling alone
READY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class _LogRead:
    status: str | None  # None: the job is gone
    lines: list[LogLineOut]


async def log_events(
    job_id: uuid.UUID, domain_id: uuid.UUID, after_seq: int, level: str | None
) -> AsyncIterator[ServerSentEvent]:
    """Every line after `after_seq`, then new ones as they commit; ends once the job is over."""
    listener = get_listener()
    topics = [("job_logs", str(job_id)), ("job_status", str(job_id))]
    with listener.subscribe(topics) as sub:
        await listener.wait_ready(READY_TIMEOUT_S)
        cursor = after_seq
        while True:
            read = await run_db(
                partial(
                    _read_job_logs,
                    job=job_id,
                    domain=domain_id,
                    after=cursor,
                    level=level,
                )
            )
            for line in read.lines:
                yield ServerSentEvent(data=line.model_dump_json(), event="log", id=str(line.seq))
                cursor = line.seq
            if len(read.lines) == BATCH:
                continue  # more lines are waiting: no need to be woken
            if read.status is None or read.status in TERMINAL_STATUSES:
                yield ServerSentEvent(
                    data=json.dumps({"job_id": str(job_id), "status": read.status}), event="end"
                )
                return
            await sub.get(timeout=POLL_S)


def _read_job_logs(
    session: Session, *, job: uuid.UUID, domain: uuid.UUID, after: int, level: str | None
) -> _LogRead:
    """Status first, then lines, in one transaction (see the module docstring for why)."""
    try:
        status = jobs_query.job_status(session, job, domain)
    except NotFound:
        return _LogRead(None, [])
    lines = job_logs.tail(session, job, after_seq=after, min_level=level, limit=BATCH)
    return _LogRead(status, [LogLineOut.build(line) for line in lines])


def _read_events(
    session: Session, *, notices: list[Notice], user_id: uuid.UUID, domain_id: uuid.UUID
) -> list[ServerSentEvent]:
    """Turn doorbells into events the caller may see: jobs of their domain, their notifications."""
    job_ids = [j for n in notices if n.channel == "job_status" if (j := _uuid(n.key))]
    note_ids = [i for n in notices if n.channel == "notifications" if (i := _uuid(n.value))]
    jobs = {str(job.id): job for job in jobs_query.jobs_in_domain(session, job_ids, domain_id)}
    notes = {
        str(note.id): note
        for note in notifications_query.for_user(session, note_ids, user_id)
        if note.domain_id == domain_id
    }
    events: list[ServerSentEvent] = []
    for notice in notices:
        if notice == RESYNC:
            events.append(ServerSentEvent(data="{}", event="resync"))
        elif notice.channel == "job_status" and (job := jobs.get(notice.key)):
            job_data = {
                "job_id": str(job.id),
                "status": notice.value,
                "data_source_id": str(job.data_source_id),
                "campaign_id": str(job.campaign_id) if job.campaign_id else None,
                "schedule_id": str(job.schedule_id) if job.schedule_id else None,
            }
            events.append(ServerSentEvent(data=json.dumps(job_data), event="job_status"))
        elif notice.channel == "notifications" and (note := notes.get(notice.value)):
            note_data = {
                "id": str(note.id),
                "kind": note.kind,
                "payload": note.payload,
                "created_at": note.created_at.isoformat(),
            }
            events.append(ServerSentEvent(data=json.dumps(note_data), event="notification"))
    return events


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def domain_events(user_id: uuid.UUID, domain_id: uuid.UUID) -> AsyncIterator[ServerSentEvent]:
    """Job status changes in the caller's domain and the caller's new notifications, live.

    Not resumable: after a `resync` event (the listener reconnected or the client fell behind)
    a client re-fetches what it shows.
    """
    listener = get_listener()
    topics = [("job_status", None), ("notifications", str(user_id))]
    with listener.subscribe(topics) as sub:
        ready = await listener.wait_ready(READY_TIMEOUT_S)
        yield ServerSentEvent(data=json.dumps({"listening": ready}), event="ready")
        while True:
            notices = await sub.get(timeout=None)
            events = await run_db(
                partial(_read_events, notices=notices, user_id=user_id, domain_id=domain_id)
            )
            for event in events:
                yield event
