"""The fleet's state for `/metrics`, read at scrape time from the jobs and job log tables.

PostgreSQL is the source of truth for jobs, so every API replica answers the same numbers and
nothing has to be summed across worker processes. One read, under a statement timeout so a scrape
stays cheap whatever the tables' size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

_JOBS = "SELECT queue, status, count(*) FROM jobs GROUP BY queue, status"
_TOTALS = (
    "SELECT queue, coalesce(sum(inserted + updated), 0), coalesce(sum(pages), 0) "
    "FROM jobs GROUP BY queue"
)
_LOG_EVENTS = (
    "SELECT j.queue, l.event, count(*) FROM job_logs l JOIN jobs j ON j.id = l.job_id "
    "WHERE l.event IN ('http.retry', 'job.provider_error', 'http.throttled') "
    "OR (l.event = 'http.rate_limited' AND l.fields->>'status' = '429') "
    "GROUP BY j.queue, l.event"
)
_DURATIONS = (
    "SELECT queue, extract(epoch FROM finished_at - started_at) AS s FROM jobs "
    "WHERE finished_at IS NOT NULL AND started_at IS NOT NULL"
)


@dataclass
class FleetRows:
    #: (queue, status, jobs)
    jobs: list[tuple[str, str, int]] = field(default_factory=list)
    #: (queue, leads written, pages)
    totals: list[tuple[str, int, int]] = field(default_factory=list)
    #: (queue, provider-error log event, lines)
    log_events: list[tuple[str, str, int]] = field(default_factory=list)
    #: (queue, seconds) of every finished job
    durations: list[tuple[str, float]] = field(default_factory=list)


def read_fleet(engine: Engine) -> FleetRows:
    """One consistent read of the fleet's jobs (a 5 s statement timeout keeps scrapes cheap)."""
    out = FleetRows()
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SET LOCAL statement_timeout = '5s'"))

        def rows(query: str) -> list[Any]:
            return list(conn.execute(text(query)).all())

        out.jobs = [(str(q), str(s), int(n)) for q, s, n in rows(_JOBS)]
        out.totals = [(str(q), int(w), int(p)) for q, w, p in rows(_TOTALS)]
        out.log_events = [(str(q), str(e), int(n)) for q, e, n in rows(_LOG_EVENTS)]
        out.durations = [(str(q), float(s)) for q, s in rows(_DURATIONS)]
    return out
