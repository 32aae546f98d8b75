"""A domain's live feed, shared by `GET /events` (SSE) and `/ws` (WebSocket).

What it carries, for the caller's domain:

    lead.*, campaign.*, data_source.*   the domain's event log (`models.domain_events`): each
                                        has an `id` (its `seq`), and a feed started after a
                                        given id replays what came after it, then goes live
    campaign_metrics                    a campaign's counts changed (re-read its metrics)
    job_status, notification            as before: live only, re-read after `resync`

A notification is only a doorbell, the database is the truth: each wake-up re-reads the log
after the feed's cursor and looks the doorbells' ids up within the domain, in one transaction
that first re-checks the caller's access (`allowed`). A lost LISTEN connection (`RESYNC`)
re-reads the log too, so log events survive it; for the live-only kinds the feed says `resync`.
A cursor older than the log keeps (a gap in the numbers) also gets `resync`, then the rest.

A member gets `lead.*` with only the ids of the leads they see (their campaigns' and those
assigned to them, as in `GET /leads`). A viewer limited to clients (issue 18) gets the part
those clients' campaigns make: `lead.*` with only the ids of leads in those campaigns (an event
with none left out),
`campaign.*` and `campaign_metrics` of those campaigns, their own notifications; no
`data_source.*` and no `job_status` (sources and jobs have no client). Every read looks the
campaigns up again, so a campaign moved to another client leaves the feed at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from api.db_threads import run_db
from api.listener import RESYNC, Notice, get_listener
from models import (
    campaigns_repo,
    clients_repo,
    domain_events,
    jobs_query,
    leads_repo,
    notifications_query,
)
from models.clients_repo import ClientScope
from models.leads_repo import LeadScope

#: log events read per query; a feed catching up reads batch after batch without waiting
BATCH = 500
#: how long a new feed waits for LISTEN before it relies on the re-checks alone
READY_TIMEOUT_S = 5.0
#: an idle feed re-checks its caller's access at least this often
RECHECK_S = 5.0

#: the channels a client may pick (the WebSocket subscribes by these)
CHANNELS = (*domain_events.ENTITY_CHANNELS, "campaign_metrics", "job_status", "notification")

#: whether the feed's caller may still read it, run in the transaction of each read
AccessCheck = Callable[[Session], bool]


@dataclass(frozen=True)
class LiveEvent:
    """One event of the feed. `channel` is "" for the feed's own `ready`, `resync`, `revoked`."""

    channel: str
    event: str
    data: dict[str, Any]
    id: str | None = None

    def json_data(self) -> str:
        return json.dumps(self.data)


def resume_after(last_event_id: str | None) -> int | None:
    """The log `seq` a reconnecting client saw last (None: none, or not one of ours)."""
    text = (last_event_id or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


REVOKED = LiveEvent("", "revoked", {"reason": "access revoked"})


@dataclass
class _Read:
    events: list[LiveEvent] = field(default_factory=list)
    cursor: int = 0
    more: bool = False  # the log has more after `cursor`: read again without waiting
    revoked: bool = False


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Scope:
    """The part of the domain a member or a viewer limited to clients sees, looked up once per
    read (module docstring)."""

    session: Session
    leads: LeadScope
    #: a limited viewer's clients' campaigns; None: every campaign (a member)
    campaigns: set[uuid.UUID] | None

    def keeps(self, channel: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """The event's data as this caller may see it; None: not for them."""
        limited = self.campaigns is not None
        if channel == "campaign":
            shown = not limited or _uuid(str(data.get("id"))) in (self.campaigns or ())
            return data if shown else None
        if channel != "lead":
            return None if limited else data  # data sources have no client
        listed = [i for text in data.get("ids", []) if (i := _uuid(str(text)))]
        kept = leads_repo.ids_seen_by(self.session, self.leads, listed)
        if not kept and not data.get("truncated"):
            return None
        ids = [str(i) for i in listed if i in kept]
        if limited:  # ids, counts and kind only: a page's job and source are not theirs
            data = {k: data[k] for k in ("seq", "kind", "at", "action") if k in data}
        return {**data, "ids": ids, "count": len(ids), "truncated": bool(data.get("truncated"))}


def _read_log(
    session: Session, domain_id: uuid.UUID, cursor: int, read: _Read, scope: _Scope | None
) -> None:
    rows = domain_events.after(session, domain_id, cursor, BATCH)
    if rows and rows[0].seq != cursor + 1:
        read.events.append(LiveEvent("", "resync", {"reason": "events expired"}))
    for row in rows:
        read.cursor = row.seq
        data: dict[str, Any] | None
        data = {"seq": row.seq, "kind": row.kind, "at": row.created_at.isoformat(), **row.data}
        channel = row.kind.partition(".")[0]
        if scope is not None and (data := scope.keeps(channel, data)) is None:
            continue
        read.events.append(LiveEvent(channel, row.kind, data, id=str(row.seq)))
    read.more = len(rows) == BATCH


def _read(
    session: Session,
    *,
    notices: list[Notice],
    user_id: uuid.UUID,
    domain_id: uuid.UUID,
    cursor: int | None,
    read_log: bool,
    allowed: AccessCheck,
    clients: ClientScope = None,
    restricted: bool = False,
    starting: bool = False,
) -> _Read:
    """Access first, then the log after `cursor`, then the doorbells' rows within the domain
    (with `clients` or `restricted`, only the part such a caller sees)."""
    if not allowed(session):
        return _Read(revoked=True)
    scope = None
    if clients is not None or restricted:
        lead_scope = LeadScope(domain_id, user_id, restricted=restricted, client_ids=clients)
        mine = (
            None if clients is None else clients_repo.client_campaigns(session, domain_id, clients)
        )
        scope = _Scope(session, lead_scope, mine)
    if cursor is None or starting:
        newest = domain_events.last_seq(session, domain_id)
        if cursor is None:  # a new feed: live from the newest committed event
            return _Read(cursor=newest)
        if cursor > newest:  # not an id of this domain's log: start from what there is
            return _Read([LiveEvent("", "resync", {"reason": "unknown event id"})], cursor=newest)
    read = _Read(cursor=cursor)
    if read_log or any(n.channel == "domain_events" or n == RESYNC for n in notices):
        _read_log(session, domain_id, cursor, read, scope)
    if scope is not None and scope.campaigns is not None:  # jobs have no client
        notices = [n for n in notices if n.channel != "job_status"]
    job_ids = [j for n in notices if n.channel == "job_status" if (j := _uuid(n.key))]
    note_ids = [i for n in notices if n.channel == "notifications" if (i := _uuid(n.value))]
    campaign_ids = [c for n in notices if n.channel == "campaign_metrics" if (c := _uuid(n.key))]
    jobs = {str(job.id): job for job in jobs_query.jobs_in_domain(session, job_ids, domain_id)}
    notes = {
        str(note.id): note
        for note in notifications_query.for_user(session, note_ids, user_id)
        if note.domain_id == domain_id
    }
    campaigns = {str(c) for c in campaigns_repo.ids_in_domain(session, campaign_ids, domain_id)}
    if scope is not None and scope.campaigns is not None:
        campaigns &= {str(c) for c in scope.campaigns}
    relayed: set[str] = set()
    for notice in notices:
        if notice == RESYNC:
            read.events.append(LiveEvent("", "resync", {}))
        elif notice.channel == "job_status" and (job := jobs.get(notice.key)):
            job_data = {
                "job_id": str(job.id),
                "status": notice.value,
                "data_source_id": str(job.data_source_id),
                "campaign_id": str(job.campaign_id) if job.campaign_id else None,
                "schedule_id": str(job.schedule_id) if job.schedule_id else None,
            }
            read.events.append(LiveEvent("job_status", "job_status", job_data))
        elif notice.channel == "notifications" and (note := notes.get(notice.value)):
            note_data = {
                "id": str(note.id),
                "kind": note.kind,
                "payload": note.payload,
                "created_at": note.created_at.isoformat(),
            }
            read.events.append(LiveEvent("notification", "notification", note_data))
        elif notice.channel == "campaign_metrics" and notice.key in campaigns - relayed:
            relayed.add(notice.key)  # one per campaign per wake-up
            data = {"campaign_id": notice.key}
            read.events.append(LiveEvent("campaign_metrics", "campaign_metrics", data))
    return read


async def domain_feed(
    user_id: uuid.UUID,
    domain_id: uuid.UUID,
    allowed: AccessCheck,
    after_seq: int | None = None,
    clients: ClientScope = None,
    restricted: bool = False,
) -> AsyncGenerator[LiveEvent, None]:
    """`ready` (its id: the cursor), then the log after `after_seq` (None: nothing old), then
    live events; ends with `revoked` once the caller lost access. With `clients`: a viewer
    limited to them (module docstring)."""
    listener = get_listener()
    topics = [
        ("job_status", None),
        ("notifications", str(user_id)),
        ("domain_events", str(domain_id)),
        ("campaign_metrics", None),
    ]
    with listener.subscribe(topics) as sub:
        ready = await listener.wait_ready(READY_TIMEOUT_S)
        read = partial(
            _read,
            user_id=user_id,
            domain_id=domain_id,
            allowed=allowed,
            clients=clients,
            restricted=restricted,
        )
        start = await run_db(
            partial(read, notices=[], cursor=after_seq, read_log=True, starting=True)
        )
        if start.revoked:
            yield REVOKED
            return
        cursor = start.cursor
        # the position the events that follow start from (a replay's first comes after it)
        begin = cursor if after_seq is None or after_seq > cursor else after_seq
        yield LiveEvent("", "ready", {"listening": ready}, id=str(begin))
        for event in start.events:
            yield event
        more = start.more
        while True:
            notices = [] if more else await sub.get(timeout=RECHECK_S)
            found = await run_db(partial(read, notices=notices, cursor=cursor, read_log=more))
            if found.revoked:
                yield REVOKED
                return
            for event in found.events:
                yield event
            cursor, more = found.cursor, found.more
