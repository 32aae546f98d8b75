"""Analytics queries: periods in the caller's time zone, zero-filled timelines, cohort rates.

Definitions (docs/leads.md):
- a period `7d|30d|90d|1y` is the last N local calendar days including today, in `tz`; the
  previous period is the N days before it;
- lead counts of a period are over the leads *created* in it (a cohort): `qualified` counts those
  now qualified or converted, `responded` those that reached responded or beyond;
  rates divide by the cohort size and are `null` for an empty cohort;
- timelines have one bucket per local day / ISO week (Monday) / month, empty ones included.

Where the lead numbers come from, and why: counting `leads` row by row is a scan of the whole
cohort (a year of a big domain is hundreds of thousands of rows), so cohort counts are read from
`lead_stats` (models/lead_stats.py), counts per (domain, campaign, UTC bucket of 15 minutes, an
hour or a day) kept exact by triggers. `plan` cuts the wanted time ranges into whole buckets,
the coarsest that fit, and `_cohort` sums them, plus — counted from `leads` itself — whatever no
whole quarter hour covers: the last minutes before `now`, and the edges of a range whose local
midnight is not on a UTC quarter hour (only historical offsets such as local mean time). The
answer is therefore exactly the `leads` count, in any time zone.

A member's numbers (`scope.restricted`: own campaigns and assigned leads) cannot come from the
aggregates, which know nothing of assignment, so they are counted from `leads` with
`leads_repo.visible`; a member's leads are few. A scope of clients (a limited viewer, or a
`?client_id=` filter) keeps to the aggregates: they are per campaign. Campaign totals come
from the trigger-maintained `campaign_metrics` row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    and_,
    any_,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from models.campaigns import Campaign, CampaignMetrics, Link, LinkClick
from models.clients_repo import ClientScope, campaign_ids_of
from models.jobs import Job
from models.lead_stats import GRAINS, STAT_COLUMNS, LeadStats
from models.leads import LEAD_STATUSES, Lead
from models.leads_repo import LeadScope, visible

RANGE_DAYS = {"7d": 7, "30d": 30, "90d": 90, "1y": 365}
RESPONDED = ("responded", "qualified", "rejected", "converted")
QUALIFIED = ("qualified", "converted")
SCORES = ("1", "2", "3", "4", "5")
#: the start of "all time" for `leads_total` (aligned on every grain)
BEGINNING = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    previous_start: datetime
    tz: str
    first_day: date
    last_day: date


def period(range_: str, tz: str, now: datetime) -> Period:
    """The last N local days including today; local midnights, so DST days are 23 or 25 hours."""
    zone = ZoneInfo(tz)
    days = RANGE_DAYS[range_]
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time(), tzinfo=zone)
    previous = datetime.combine(first - timedelta(days=days), time(), tzinfo=zone)
    return Period(start, now, previous, tz, first, today)


def bucket_starts(p: Period, unit: str) -> list[date]:
    """Every bucket of the period, first one truncated like `date_trunc(unit, ...)`."""
    day = p.first_day
    if unit == "week":
        day -= timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    out: list[date] = []
    while day <= p.last_day:
        out.append(day)
        if unit == "day":
            day += timedelta(days=1)
        elif unit == "week":
            day += timedelta(days=7)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def _bucket(unit: str, tz: str, column: Any) -> ColumnElement[datetime]:
    # unit comes from a Literal and tz passed ZoneInfo; both bound, grouped by ordinal
    return func.date_trunc(unit, func.timezone(tz, column))


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- reading the aggregates -------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WIDTH = {g: timedelta(minutes=g) for g in GRAINS}


def _floor(t: datetime, step: timedelta) -> datetime:
    """`t` rounded down to a multiple of `step` since the epoch (UTC-aligned, like date_bin)."""
    return _EPOCH + (t - _EPOCH) // step * step


def _ceil(t: datetime, step: timedelta) -> datetime:
    return _EPOCH - (_EPOCH - t) // step * step


@dataclass
class Plan:
    """How to count the leads created in a union of time ranges exactly.

    `stats`: `(grain, lo, hi)` — the `lead_stats` rows of that grain with `lo <= bucket < hi`
    (`lo` and `hi` on that grain), each lying wholly inside one of the ranges planned;
    `raw`: `(lo, hi)` — ranges no whole quarter hour covers, counted from `leads`.
    """

    stats: list[tuple[int, datetime, datetime]] = field(default_factory=list)
    raw: list[tuple[datetime, datetime]] = field(default_factory=list)


def _split(lo: datetime, hi: datetime, into: Plan) -> None:
    """Cut [lo, hi) into quarters up to the first whole hour, hours up to the first whole UTC
    day, whole days, then hours and quarters to `hi`: the fewest rows that tile it exactly."""
    if lo >= hi:
        return
    quarter = _WIDTH[GRAINS[0]]
    left, right = _ceil(lo, quarter), _floor(hi, quarter)
    if left >= right:
        into.raw.append((lo, hi))
        return
    if lo < left:
        into.raw.append((lo, left))
    if right < hi:
        into.raw.append((right, hi))
    for finer, coarser in pairwise(GRAINS):
        inner_left = min(_ceil(left, _WIDTH[coarser]), right)
        inner_right = max(_floor(right, _WIDTH[coarser]), inner_left)
        for a, b in ((left, inner_left), (inner_right, right)):
            if a < b:
                into.stats.append((finer, a, b))
        left, right = inner_left, inner_right
    if left < right:
        into.stats.append((GRAINS[-1], left, right))


def plan(bounds: Sequence[datetime]) -> Plan:
    """The plan for the consecutive ranges [bounds[i], bounds[i+1]).

    Adjacent pieces of one grain are merged (every row still lies inside one range), so a
    timeline of local days in a whole-hour zone reads one hour range and one day range."""
    out = Plan()
    for lo, hi in pairwise(bounds):
        _split(lo, hi, out)
    merged = Plan()
    for grain, lo, hi in sorted(out.stats):
        last = merged.stats[-1] if merged.stats else None
        if last is not None and last[0] == grain and last[2] == lo:
            merged.stats[-1] = (grain, last[1], hi)
        else:
            merged.stats.append((grain, lo, hi))
    for lo, hi in sorted(out.raw):
        if merged.raw and merged.raw[-1][1] == lo:
            merged.raw[-1] = (merged.raw[-1][0], hi)
        else:
            merged.raw.append((lo, hi))
    return merged


def _raw_counts() -> list[ColumnElement[int]]:
    """Per lead, the `lead_stats` columns it counts in (1 or 0), in `STAT_COLUMNS` order."""
    score: ColumnElement[str | None] = Lead.qualification["score"].astext
    flags: list[ColumnElement[bool]] = [Lead.status == s for s in LEAD_STATUSES]
    flags += [score == s for s in SCORES]
    flags.append(and_(score.is_not(None), score.not_in(SCORES)))
    return [literal(1, Integer), *(func.coalesce(cast(f, Integer), 0) for f in flags)]


#: a grain with more pieces than this is read with one `= ANY(list)` of bucket starts
_MANY_PIECES = 4
#: ... of its pieces, those of at most this many buckets (longer ones stay ranges)
_SHORT_PIECE = 96


def _stats_rows(p: Plan) -> ColumnElement[bool]:
    """The `lead_stats` rows of the plan, for a domain's key index `(grain, bucket)`.

    Few pieces are literal ranges: the planner sees each one's selectivity and reads it as an
    index range (an array joined in would hide it, and a scan of the table follows). Many short
    pieces — a timeline of local days in a half-hour zone has two per day — become one list of
    bucket starts per grain instead: hundreds of OR'd ranges would be rechecked on every row."""
    clauses: list[ColumnElement[bool]] = []
    for grain in GRAINS:
        width = _WIDTH[grain]
        pieces = [(lo, hi) for g, lo, hi in p.stats if g == grain]
        short = [(lo, hi) for lo, hi in pieces if hi - lo <= _SHORT_PIECE * width]
        if len(pieces) > _MANY_PIECES and len(short) > 1:
            pieces = [piece for piece in pieces if piece not in short]
            starts = [lo + k * width for lo, hi in short for k in range((hi - lo) // width)]
            array = literal(starts, ARRAY(DateTime(timezone=True)))
            clauses.append(and_(LeadStats.grain == grain, LeadStats.bucket == any_(array)))
        clauses += [
            and_(LeadStats.grain == grain, LeadStats.bucket >= lo, LeadStats.bucket < hi)
            for lo, hi in pieces
        ]
    return or_(*clauses)


def _cohort(
    scope: LeadScope,
    bounds: Sequence[datetime],
    campaign_id: uuid.UUID | None,
    key: str | None = None,
    tz: str = "UTC",
) -> Select[Any]:
    """Sums of `STAT_COLUMNS` over the live leads created in [bounds[0], bounds[-1]), grouped
    by `key`: None, "campaign", or a `date_trunc` unit (local buckets in `tz`)."""
    if scope.restricted:
        p = Plan(raw=[(bounds[0], bounds[-1])])
    else:
        p = plan(bounds)
        if not (p.stats or p.raw):  # an empty range: let `leads` answer (no rows)
            p.raw.append((bounds[0], bounds[-1]))

    def key_of(column: Any, campaign: Any) -> list[ColumnElement[Any]]:
        if key is None:
            return []
        if key == "campaign":
            return [campaign.label("k")]
        return [_bucket(key, tz, column).label("k")]

    arms: list[Select[Any]] = []
    if p.stats:
        where = [LeadStats.domain_id == scope.domain_id, _stats_rows(p)]
        if campaign_id is not None:
            where.append(LeadStats.campaign_id == campaign_id)
        if scope.client_ids is not None:  # the aggregates are per campaign: still exact
            where.append(
                LeadStats.campaign_id.in_(campaign_ids_of(scope.domain_id, scope.client_ids))
            )
        arms.append(
            select(
                *key_of(LeadStats.bucket, LeadStats.campaign_id),
                *(getattr(LeadStats, c).label(c) for c in STAT_COLUMNS),
            ).where(*where)
        )
    if p.raw:
        where = [visible(scope)]
        where.append(or_(*(and_(Lead.created_at >= lo, Lead.created_at < hi) for lo, hi in p.raw)))
        if campaign_id is not None:
            where.append(Lead.campaign_id == campaign_id)
        counts = _raw_counts()
        arms.append(
            select(
                *key_of(Lead.created_at, Lead.campaign_id),
                *(c.label(name) for c, name in zip(counts, STAT_COLUMNS, strict=True)),
            ).where(*where)
        )
    rows = (arms[0] if len(arms) == 1 else union_all(*arms)).subquery("u")
    sums = [func.coalesce(func.sum(rows.c[c]), 0).label(c) for c in STAT_COLUMNS]
    if key is None:
        return select(*sums)
    return select(rows.c.k, *sums).group_by(rows.c.k)


def _status_counts(row: Any) -> dict[str, int]:
    """The `lead_counts` shape from one row of `_cohort` sums."""
    m = row._mapping
    out = {"leads": int(m["leads"]), **{s: int(m[s]) for s in LEAD_STATUSES}}
    out["reached_responded"] = sum(out[s] for s in RESPONDED)
    out["reached_qualified"] = sum(out[s] for s in QUALIFIED)
    return out


def lead_counts(
    session: Session,
    scope: LeadScope,
    start: datetime,
    end: datetime,
    campaign_id: uuid.UUID | None = None,
) -> dict[str, int]:
    """Cohort counts of leads created in [start, end): total, per status, responded, qualified."""
    return _status_counts(session.execute(_cohort(scope, [start, end], campaign_id)).one())


def timeline(
    session: Session,
    scope: LeadScope,
    p: Period,
    unit: str,
    campaign_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Per bucket: leads created, and how many of them are now qualified and converted."""
    zone = ZoneInfo(p.tz)
    starts = bucket_starts(p, unit)
    # the local midnights that separate buckets: each bucket is then read from whole rows
    bounds = [p.start, *(datetime.combine(b, time(), tzinfo=zone) for b in starts[1:]), p.end]
    query = _cohort(scope, bounds, campaign_id, key=unit, tz=p.tz)
    found: dict[date, tuple[int, int, int]] = {}
    for row in session.execute(query):
        m = row._mapping
        found[m["k"].date()] = (
            int(m["leads"]),
            int(m["qualified"]) + int(m["converted"]),
            int(m["converted"]),
        )
    return [
        {
            "bucket": b,
            **dict(zip(("leads", "qualified", "converted"), found.get(b, (0, 0, 0)), strict=True)),
        }
        for b in starts
    ]


def clicks_timeline(
    session: Session, p: Period, unit: str, *where: ColumnElement[bool]
) -> list[dict[str, Any]]:
    query = (
        select(_bucket(unit, p.tz, LinkClick.ts), func.count())
        .where(LinkClick.ts >= p.start, LinkClick.ts < p.end, *where)
        .group_by(literal_column("1"))
    )
    found = {row[0].date(): int(row[1]) for row in session.execute(query)}
    return [{"bucket": b, "clicks": found.get(b, 0)} for b in bucket_starts(p, unit)]


def counted_by(
    session: Session, column: Any, p: Period, *where: ColumnElement[bool], limit: int = 10
) -> list[dict[str, Any]]:
    query = (
        select(column, func.count().label("n"))
        .where(*where)
        .group_by(column)
        .order_by(text("n DESC"), column)
        .limit(limit)
    )
    return [{"value": row[0], "count": int(row[1])} for row in session.execute(query)]


def qualification_distribution(
    session: Session,
    scope: LeadScope,
    start: datetime,
    end: datetime,
    campaign_id: uuid.UUID | None = None,
) -> dict[str, int]:
    """Leads created in the period by qualification score ("1".."5", "unqualified").

    From the aggregates; a score outside 1..5 (`q_other`, which the API never writes) has no
    column of its own there, so then the distribution is counted from `leads` to name it."""
    m = session.execute(_cohort(scope, [start, end], campaign_id)).one()._mapping
    if int(m["q_other"]) == 0:
        scored = {s: int(m[f"q{s}"]) for s in SCORES}
        return scored | {"unqualified": int(m["leads"]) - sum(scored.values())}
    score: ColumnElement[str | None] = Lead.qualification["score"].astext
    where = [visible(scope), Lead.created_at >= start, Lead.created_at < end]
    if campaign_id is not None:
        where.append(Lead.campaign_id == campaign_id)
    rows = session.execute(select(score, func.count()).where(*where).group_by(score))
    out = {str(s): 0 for s in range(1, 6)} | {"unqualified": 0}
    for value, n in rows:
        out[value if value is not None else "unqualified"] = int(n)
    return out


def jobs_counts(
    session: Session,
    domain_id: uuid.UUID,
    start: datetime,
    end: datetime,
    clients: ClientScope = None,
) -> dict[str, int]:
    """Jobs run and failed in [start, end); with `clients`, those filing into their campaigns."""
    where = [Job.domain_id == domain_id, Job.created_at >= start, Job.created_at < end]
    if clients is not None:
        where.append(Job.campaign_id.in_(campaign_ids_of(domain_id, clients)))
    row = session.execute(
        select(
            func.count().filter(Job.started_at.is_not(None)),
            func.count().filter(Job.status == "failed"),
        ).where(*where)
    ).one()
    return {"jobs_run": int(row[0]), "jobs_failed": int(row[1])}


def top_campaigns(
    session: Session,
    scope: LeadScope,
    start: datetime,
    end: datetime,
    limit: int = 5,
    metric: str = "leads",
) -> list[dict[str, Any]]:
    """The campaigns ranked by `metric` over the leads created in the period (ties: more
    leads first, then by name); campaigns with no such lead are left out."""
    per_campaign = _cohort(scope, [start, end], None, key="campaign").subquery("c")
    c = per_campaign.c
    counts: dict[str, ColumnElement[Any]] = {
        "leads": c.leads,
        "responded": sum((c[s] for s in RESPONDED[1:]), c[RESPONDED[0]]),
        "qualified": sum((c[s] for s in QUALIFIED[1:]), c[QUALIFIED[0]]),
        "converted": c.converted,
    }
    ranks = {
        **counts,
        "response_rate": counts["responded"] * 1.0 / c.leads,
        "qualification_rate": counts["qualified"] * 1.0 / c.leads,
        "conversion_rate": counts["converted"] * 1.0 / c.leads,
    }
    rows = session.execute(
        select(Campaign.id, Campaign.name, *(v.label(k) for k, v in counts.items()))
        .join(per_campaign, c.k == Campaign.id)
        .where(c.leads > 0)
        .order_by(ranks[metric].desc(), c.leads.desc(), Campaign.name)
        .limit(limit)
    )
    out = []
    for row in rows:
        m = {k: int(row._mapping[k]) for k in counts}
        out.append(
            {
                "id": row.id,
                "name": row.name,
                **m,
                "response_rate": rate(m["responded"], m["leads"]),
                "qualification_rate": rate(m["qualified"], m["leads"]),
                "conversion_rate": rate(m["converted"], m["leads"]),
            }
        )
    return out


def leads_total(session: Session, scope: LeadScope, before: datetime) -> int:
    """Live leads created before `before`, all time."""
    return int(session.execute(_cohort(scope, [BEGINNING, before], None)).one().leads)


def campaign_totals(session: Session, campaign_id: uuid.UUID) -> dict[str, int]:
    """All-time live lead counts of a campaign, from the maintained metrics row."""
    metrics = session.get(CampaignMetrics, campaign_id)
    names: Sequence[str] = ("leads", *LEAD_STATUSES)
    return {n: int(getattr(metrics, n)) if metrics else 0 for n in names}


def campaign_clicks(domain_id: uuid.UUID, campaign_id: uuid.UUID) -> ColumnElement[bool]:
    """Clicks on any link of the campaign (deleted links included: the clicks happened)."""
    links = select(Link.id).where(Link.campaign_id == campaign_id, Link.domain_id == domain_id)
    return LinkClick.link_id.in_(links)
