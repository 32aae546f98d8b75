"""`lead_stats` (migration 0003) against a recount of `leads` done here in Python, after every kind
of write; the range planner that reads it; and analytics read through it against `leads` itself."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models import analytics_repo as ar
from models.lead_stats import GRAINS, STAT_COLUMNS
from models.leads import LEAD_STATUSES
from models.leads_repo import LeadScope
from models.leads_sink import write_page
from records import LeadRecord
from tests.factories import make_domain, make_source

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Key = tuple[uuid.UUID, uuid.UUID | None, int, datetime]


def recount(conn: psycopg.Connection[Any]) -> dict[Key, tuple[int, ...]]:
    """What `lead_stats` must hold, computed from the live leads in Python (not in SQL)."""
    out: dict[Key, Counter[str]] = {}
    rows = conn.execute(
        "SELECT domain_id, campaign_id, created_at, status, qualification->>'score' "
        "FROM leads WHERE deleted_at IS NULL"
    ).fetchall()
    for domain, campaign, created, status, score in rows:
        for grain in GRAINS:
            width = timedelta(minutes=grain)
            bucket = EPOCH + (created - EPOCH) // width * width
            c = out.setdefault((domain, campaign, grain, bucket), Counter())
            c["leads"] += 1
            c[status] += 1
            if score in ("1", "2", "3", "4", "5"):
                c[f"q{score}"] += 1
            elif score is not None:
                c["q_other"] += 1
    return {k: tuple(c[name] for name in STAT_COLUMNS) for k, c in out.items()}


def stored(conn: psycopg.Connection[Any]) -> dict[Key, tuple[int, ...]]:
    """The non-empty rows of `lead_stats` (a bucket whose leads all left stays as zeros)."""
    rows = conn.execute(
        f"SELECT domain_id, campaign_id, grain, bucket, {', '.join(STAT_COLUMNS)} FROM lead_stats"
    ).fetchall()
    return {(r[0], r[1], r[2], r[3]): tuple(r[4:]) for r in rows if any(r[4:])}


def assert_consistent(conn: psycopg.Connection[Any]) -> None:
    assert stored(conn) == recount(conn)
    negative = conn.execute(
        f"SELECT count(*) FROM lead_stats WHERE least({', '.join(STAT_COLUMNS)}) < 0"
    ).fetchone()
    assert negative == (0,)


def campaign(conn: psycopg.Connection[Any], domain: uuid.UUID) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO campaigns (domain_id, name, slug) VALUES (%s, %s, %s) RETURNING id",
        (domain, *[uuid.uuid4().hex] * 2),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def insert_leads(
    conn: psycopg.Connection[Any],
    domain: uuid.UUID,
    campaigns: list[uuid.UUID | None],
    n: int,
    rng: random.Random,
    base: datetime,
    prefix: str = "",
) -> None:
    """`n` leads in one multi-row INSERT: random campaign, status, score, creation minute (some
    exactly on hour and day boundaries), a few already soft-deleted, one odd score."""
    rows = []
    for i in range(n):
        created = base - timedelta(seconds=rng.randrange(0, 3 * 86400))
        if i % 17 == 0:
            created = created.replace(minute=0, second=0, microsecond=0)
        if i % 41 == 0:
            created = created.replace(hour=0, minute=0, second=0, microsecond=0)
        score = rng.choice([None, None, 1, 2, 3, 4, 5])
        qualification = None if score is None else f'{{"score": {score}}}'
        if i == 7:
            qualification = '{"score": "7"}'
        rows.append(
            (
                domain,
                rng.choice(campaigns),
                f"{prefix}{uuid.uuid4().hex}@x.example",
                rng.choice(LEAD_STATUSES),
                created,
                qualification,
                created if i % 13 == 0 else None,
            )
        )
    values = ", ".join(["(%s, %s, %s, %s, %s, %s::jsonb, %s)"] * n)
    conn.execute(
        "INSERT INTO leads (domain_id, campaign_id, email, status, created_at, qualification, "
        f"deleted_at) VALUES {values}",
        [v for row in rows for v in row],
    )


def test_stats_follow_every_kind_of_write(engine: Engine, db_url: str) -> None:
    rng = random.Random(3)
    domain, other = make_domain(engine), make_domain(engine)
    base = datetime.now(UTC)
    with psycopg.connect(db_url, autocommit=True) as conn:
        a, b, c = (campaign(conn, domain) for _ in range(3))
        x = campaign(conn, other)
        # inserts (multi-row statements), two domains
        insert_leads(conn, domain, [a, b, c, None], 300, rng, base)
        insert_leads(conn, other, [x, None], 80, rng, base)
        assert_consistent(conn)
        steps = [
            # status changes, qualification changes, an odd score, nothing relevant changing
            "UPDATE leads SET status = 'contacted' WHERE status = 'new' AND email < '8'",
            "UPDATE leads SET qualification = '{\"score\": 5}' WHERE email < '4'",
            "UPDATE leads SET qualification = NULL WHERE email > 'c' AND email < 'd'",
            "UPDATE leads SET qualification = '{\"score\": 0}' WHERE email LIKE 'e%'",
            "UPDATE leads SET first_name = 'Same' WHERE email < 'a'",
            # soft delete and restore
            "UPDATE leads SET deleted_at = now() WHERE email < '3'",
            "UPDATE leads SET deleted_at = NULL WHERE email < '2'",
            # campaign moves: to another, to none, from none
            f"UPDATE leads SET campaign_id = '{b}' WHERE campaign_id = '{a}' AND email < '9'",
            f"UPDATE leads SET campaign_id = NULL WHERE campaign_id = '{c}' AND email < '6'",
            f"UPDATE leads SET campaign_id = '{c}' WHERE campaign_id IS NULL AND email > 'b'",
            # a lead's creation time moving buckets
            "UPDATE leads SET created_at = created_at - interval '7 hours 5 minutes' "
            "WHERE email > 'd'",
            # hard deletes
            "DELETE FROM leads WHERE email > 'e'",
            # deleting a campaign sets its leads' campaign to NULL (an UPDATE by the FK)
            f"DELETE FROM campaigns WHERE id = '{a}'",
        ]
        for step in steps:
            conn.execute(step)
            assert_consistent(conn)
        # a transaction that writes and rolls back leaves no trace
        with pytest.raises(RuntimeError), conn.transaction():
            conn.execute("UPDATE leads SET status = 'rejected'")
            raise RuntimeError
        assert_consistent(conn)

        # the sink: a 2,000-record page (one INSERT ... SELECT), then a page that merges
        source = make_source(engine, domain)
        page = [LeadRecord(email=f"sink{i}@x.example") for i in range(2000)]
        with conn.transaction():
            result = write_page(
                conn,
                domain_id=domain,
                data_source_id=source,
                job_id=None,
                provider="synthetic",
                records=page,
                campaign_id=b,
            )
        assert result.inserted == 2000
        assert_consistent(conn)
        conn.execute("UPDATE leads SET deleted_at = now() WHERE email LIKE 'sink1%'")
        with conn.transaction():
            result = write_page(
                conn,
                domain_id=domain,
                data_source_id=source,
                job_id=None,
                provider="synthetic",
                records=[LeadRecord(email=f"sink{i}@x.example", title="CTO") for i in range(1500)]
                + [LeadRecord(email=f"more{i}@x.example") for i in range(10)],
                campaign_id=b,
            )
        assert result.inserted == 10
        assert_consistent(conn)

        # deleting a domain takes its rows along and leaves the other domain's alone
        conn.execute("DELETE FROM domains WHERE id = %s", (domain,))
        assert conn.execute(
            "SELECT count(*) FROM lead_stats WHERE domain_id = %s", (domain,)
        ).fetchone() == (0,)
        assert_consistent(conn)
        assert conn.execute("SELECT count(*) FROM lead_stats").fetchone() != (0,)


def test_concurrent_writers_to_the_same_buckets_lose_nothing(engine: Engine, db_url: str) -> None:
    """Writers hitting the same buckets, each statement touching several in a random order:
    key-ordered upserts queue on each other (no deadlock) and add (no lost count)."""
    domain = make_domain(engine)
    base = datetime.now(UTC).replace(minute=30)
    with psycopg.connect(db_url, autocommit=True) as conn:
        campaigns: list[uuid.UUID | None] = [campaign(conn, domain) for _ in range(3)]
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(db_url) as conn:
                for _ in range(15):
                    order = rng.sample([*campaigns, None], 4)
                    insert_leads(conn, domain, order, 40, rng, base, prefix=f"w{seed}-")
                    conn.commit()
                    # its own leads only: writers then contend on the stats rows, not on leads
                    conn.execute(
                        "UPDATE leads SET status = %s, campaign_id = %s "
                        "WHERE id IN (SELECT id FROM leads WHERE email LIKE %s "
                        "ORDER BY random() LIMIT 20)",
                        (rng.choice(LEAD_STATUSES), rng.choice(order), f"w{seed}-%"),
                    )
                    conn.commit()
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert_consistent(conn)
        total = conn.execute("SELECT count(*) FROM leads").fetchone()
        assert total is not None and total[0] >= 15 * 40


# --- the planner --------------------------------------------------------------------------

_moments = st.integers(min_value=0, max_value=4 * 86400 * 4).map(
    lambda q: datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=q * 15)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_moments, min_size=2, max_size=8, unique=True).map(sorted))
def test_plan_tiles_the_ranges_exactly_with_whole_buckets(bounds: list[datetime]) -> None:
    p = ar.plan(bounds)
    pieces = [(lo, hi) for _, lo, hi in p.stats] + p.raw
    pieces.sort()
    # disjoint, and together exactly [first, last)
    assert pieces[0][0] == bounds[0] and pieces[-1][1] == bounds[-1]
    for (_, hi), (lo, _) in pairwise(pieces):
        assert hi == lo
    for grain, lo, hi in p.stats:
        width = timedelta(minutes=grain)
        assert lo < hi and (lo - EPOCH) % width == timedelta(0) == (hi - EPOCH) % width
        # no bucket of this grain straddles a boundary between two ranges
        for inner in bounds[1:-1]:
            assert not lo < inner < hi or (inner - EPOCH) % width == timedelta(0)
    quarter = timedelta(minutes=15)
    for lo, hi in p.raw:  # only what no whole quarter hour of one range covers
        q = EPOCH - (EPOCH - lo) // quarter * quarter  # the first quarter starting in it
        while q + quarter <= hi:
            assert any(q < inner < q + quarter for inner in bounds)
            q += quarter


def test_plan_of_a_year_in_utc_reads_few_rows() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    end = datetime(2025, 12, 31, 17, 47, 12, tzinfo=UTC)
    p = ar.plan([start, end])
    assert [g for g, _, _ in p.stats] == [15, 60, 1440]
    assert p.raw == [(datetime(2025, 12, 31, 17, 45, tzinfo=UTC), end)]


# --- analytics through the aggregates equal analytics from `leads` -------------------------


def _raw_only(bounds: Any) -> ar.Plan:
    return ar.Plan(raw=[(bounds[0], bounds[-1])])


@pytest.mark.parametrize(
    "tz",
    ["UTC", "Europe/Oslo", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham"],
)
def test_analytics_from_aggregates_equal_counts_from_leads(
    engine: Engine, db_url: str, tz: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(11)
    domain = make_domain(engine)
    now = datetime.now(UTC)
    with psycopg.connect(db_url, autocommit=True) as conn:
        campaigns: list[uuid.UUID | None] = [campaign(conn, domain) for _ in range(3)]
        for days in (0, 3, 40, 300, 600):
            insert_leads(conn, domain, [*campaigns, None], 120, rng, now - timedelta(days=days))
    scope = LeadScope(domain_id=domain, user_id=uuid.uuid4())
    odd = now - timedelta(days=2, hours=5, minutes=7, seconds=13, microseconds=5)

    def everything() -> list[Any]:
        out: list[Any] = []
        with Session(engine) as session:
            for range_ in ("7d", "90d", "1y"):
                p = ar.period(range_, tz, now)
                out.append(ar.lead_counts(session, scope, p.start, p.end))
                out.append(ar.lead_counts(session, scope, p.previous_start, p.start))
                out.append(ar.qualification_distribution(session, scope, p.start, p.end))
                out.append(ar.top_campaigns(session, scope, p.start, p.end))
                for unit in ("day", "week", "month"):
                    out.append(ar.timeline(session, scope, p, unit))
                    out.append(ar.timeline(session, scope, p, unit, campaigns[0]))
                out.append(ar.lead_counts(session, scope, p.start, p.end, campaigns[1]))
            out.append(ar.leads_total(session, scope, now))
            out.append(ar.lead_counts(session, scope, odd, now))  # edges off the quarter hours
            out.append(ar.lead_counts(session, scope, odd, odd + timedelta(minutes=9)))
        return out

    from_stats = everything()
    monkeypatch.setattr(ar, "plan", _raw_only)
    assert everything() == from_stats
    assert from_stats[-3] == 600 - sum(1 for i in range(120) if i % 13 == 0) * 5
