"""The domain event log's numbering: per domain, gap-free and in commit order, which is what
makes resuming after `Last-Event-ID` skip and repeat nothing (`models.domain_events`)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from models import domain_events
from models.domain_events import DomainEvent
from tests.factories import make_domain


def _publish(engine: Engine, domain: uuid.UUID, name: str) -> int:
    with Session(engine) as session, session.begin():
        return domain_events.publish(session, domain, "campaign.created", {"id": name})


def _seqs(engine: Engine, domain: uuid.UUID) -> list[int]:
    with Session(engine) as session:
        query = select(DomainEvent.seq).where(DomainEvent.domain_id == domain)
        return list(session.scalars(query.order_by(DomainEvent.seq)))


def test_a_second_writer_numbers_only_after_the_first_commits(engine: Engine) -> None:
    domain, other = make_domain(engine), make_domain(engine)
    with Session(engine) as first, first.begin():
        assert domain_events.publish(first, domain, "lead.created", {"ids": []}) == 1
        # While the first is open, a second writer of the domain waits for its number ...
        with Session(engine) as second, second.begin():
            second.execute(text("SET LOCAL lock_timeout = '50ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                domain_events.publish(second, domain, "lead.created", {"ids": []})
        # ... and another domain's writer does not.
        assert _publish(engine, other, "x") == 1
        with Session(engine) as reader:
            assert domain_events.last_seq(reader, domain) == 0  # nothing committed yet
    assert _publish(engine, domain, "after") == 2
    assert _seqs(engine, domain) == [1, 2]


def test_a_rolled_back_event_leaves_no_gap(engine: Engine) -> None:
    domain = make_domain(engine)
    _publish(engine, domain, "one")
    with Session(engine) as session:
        session.begin()
        domain_events.publish(session, domain, "campaign.created", {"id": "lost"})
        session.rollback()
    assert _publish(engine, domain, "two") == 2
    with Session(engine) as session:
        rows = domain_events.after(session, domain, 0, 10)
        assert [(r.seq, r.data["id"]) for r in rows] == [(1, "one"), (2, "two")]
        assert domain_events.last_seq(session, domain) == 2


def test_every_prune_every_th_event_drops_events_past_retention(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(domain_events, "PRUNE_EVERY", 3)
    monkeypatch.setattr(domain_events, "RETENTION", timedelta(0))
    domain = make_domain(engine)
    _publish(engine, domain, "one")
    _publish(engine, domain, "two")
    assert _seqs(engine, domain) == [1, 2]
    _publish(engine, domain, "three")  # the 3rd: older transactions' events go
    assert _seqs(engine, domain) == [3]


def test_only_entity_kinds_are_published(engine: Engine) -> None:
    domain = make_domain(engine)
    with Session(engine) as session, pytest.raises(ValueError, match=r"job\.moved"):
        domain_events.publish(session, domain, "job.moved", {})


def test_ids_payload_caps_the_list_and_says_so() -> None:
    ids = [uuid.uuid4() for _ in range(domain_events.MAX_IDS + 5)]
    payload = domain_events.ids_payload([*ids, ids[0]])  # repeats count once
    assert payload["count"] == domain_events.MAX_IDS + 5 and payload["truncated"] is True
    assert payload["ids"] == [str(i) for i in ids[: domain_events.MAX_IDS]]
    assert domain_events.ids_payload(ids[:2]) == {
        "ids": [str(ids[0]), str(ids[1])],
        "count": 2,
        "truncated": False,
    }
