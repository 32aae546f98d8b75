"""The domain's event log: what `/events` and the WebSocket replay after `Last-Event-ID`.

Changes to leads, campaigns and data sources each add one row here in the transaction that makes
them (a worker's committed page is one row, however many leads it wrote; an API request is one
row, a bulk request included), then `NOTIFY domain_events, '<domain_id>:<seq>'`. Rows carry ids,
counts and kinds only: never a name or an email (the log is read by every member, and kept).

`seq` is per domain, gap-free and commit-ordered, like a job's log `seq`: the transaction bumps
its domain's counter row (`domain_event_counters`), which it then holds locked until it commits,
so the next writer of the domain takes the next number only after this one is visible. A reader
that saw `seq` N has therefore seen every event up to N, and resuming after N repeats nothing and
skips nothing. The counter is taken as the last write of a transaction (callers publish just
before they commit), so the lock is held for the commit only and waits on nothing.

Retention: rows older than `RETENTION` are pruned by the writer every `PRUNE_EVERY` events of a
domain (a bounded delete, see `_PRUNE`); a reader that resumes from before the oldest row kept
finds a gap in the numbers and resyncs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, created_at
from models.notify import pg_notify

#: the entity kinds an event names, by channel (the WebSocket subscribes by these)
ENTITY_CHANNELS = ("lead", "campaign", "data_source")
#: how many ids one event lists at most; `count` always says how many changed
MAX_IDS = 100
RETENTION = timedelta(days=1)
PRUNE_EVERY = 1000


class DomainEventCounter(Base):
    """The last `seq` a domain's event log handed out (its row lock orders the writers)."""

    __tablename__ = "domain_event_counters"

    domain_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger)


class DomainEvent(Base):
    """One change of a domain's leads, campaigns or data sources (module docstring)."""

    __tablename__ = "domain_events"

    domain_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: `lead.created`, `lead.batch`, `campaign.updated`, ... (`<channel>.<what happened>`)
    kind: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at()


_PUBLISH = text(
    """
WITH n AS (
    INSERT INTO domain_event_counters AS c (domain_id, last_seq) VALUES (:domain_id, 1)
    ON CONFLICT (domain_id) DO UPDATE SET last_seq = c.last_seq + 1
    RETURNING last_seq
)
INSERT INTO domain_events (domain_id, seq, kind, data)
SELECT :domain_id, last_seq, :kind, CAST(:data AS jsonb) FROM n
RETURNING seq
"""
)

# Bounded: looks at the domain's oldest `2 * PRUNE_EVERY` rows only (they are the old ones), so
# a prune costs the same however long the log is, and a backlog still shrinks turn by turn.
_PRUNE = text(
    """
DELETE FROM domain_events
WHERE domain_id = :domain_id AND seq IN (
    SELECT seq FROM (
        SELECT seq, created_at FROM domain_events WHERE domain_id = :domain_id
        ORDER BY seq LIMIT :batch
    ) oldest
    WHERE created_at < now() - :keep
)
"""
)


def ids_payload(ids: Iterable[uuid.UUID]) -> dict[str, Any]:
    """`ids` (the first `MAX_IDS`, as strings) with their `count`: a page of 5,000 leads stays a
    few kilobytes, and the client that needs them all re-reads by filter."""
    listed = list(dict.fromkeys(str(i) for i in ids))
    return {"ids": listed[:MAX_IDS], "count": len(listed), "truncated": len(listed) > MAX_IDS}


def publish(session: Session, domain_id: uuid.UUID, kind: str, data: dict[str, Any]) -> int:
    """Add one event to the caller's transaction and ring the doorbell; returns its `seq`.

    Call it last before committing (module docstring: the counter stays locked until then)."""
    if kind.partition(".")[0] not in ENTITY_CHANNELS:
        raise ValueError(f"unknown event kind {kind!r}")
    seq = int(
        session.execute(
            _PUBLISH, {"domain_id": domain_id, "kind": kind, "data": json.dumps(data)}
        ).scalar_one()
    )
    if seq % PRUNE_EVERY == 0:
        params = {"domain_id": domain_id, "keep": RETENTION, "batch": 2 * PRUNE_EVERY}
        session.execute(_PRUNE, params)
    pg_notify(session, "domain_events", f"{domain_id}:{seq}")
    return seq


def last_seq(session: Session, domain_id: uuid.UUID) -> int:
    """The newest committed `seq` of the domain (0: none yet): where a new live stream starts."""
    found = session.scalar(
        select(DomainEventCounter.last_seq).where(DomainEventCounter.domain_id == domain_id)
    )
    return int(found or 0)


def after(
    session: Session, domain_id: uuid.UUID, after_seq: int, limit: int
) -> Sequence[DomainEvent]:
    """The domain's events after `after_seq`, oldest first."""
    return session.scalars(
        select(DomainEvent)
        .where(DomainEvent.domain_id == domain_id, DomainEvent.seq > after_seq)
        .order_by(DomainEvent.seq)
        .limit(limit)
    ).all()
