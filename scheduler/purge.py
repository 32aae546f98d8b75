"""The retention purge: each domain's expired data removed in small committed batches.

Runs on the scheduler leader every `PURGE_INTERVAL_S`, with a time budget per turn so that a
first purge of a large backlog never delays schedules (it resumes on the next turn), and as
`dashin purge` (no budget; `--dry-run` only counts). Each batch is its own short transaction
(`models.retention`), so a running job's page commits never wait on it for long: measured in
`bench/purge.py` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models import retention
from runtime.db import session_scope
from runtime.logging import get_logger

log = get_logger("scheduler.purge")
#: how often the leader purges, and the most time one turn may spend on it
PURGE_INTERVAL_S = 600.0
PURGE_BUDGET_S = 2.0
#: rows per batch (per transaction)
BATCH_ROWS = 2000


@dataclass
class PurgeReport:
    #: (domain name, kind) → rows removed (or due, in a dry run; finished_jobs counts jobs)
    rows: Counter[tuple[str, str]] = field(default_factory=Counter)
    batches: int = 0
    #: the budget ran out before everything due was removed
    incomplete: bool = False


def purge(
    engine: Engine,
    *,
    dry_run: bool = False,
    budget_s: float | None = None,
    batch_rows: int = BATCH_ROWS,
    now: datetime | None = None,
) -> PurgeReport:
    """Remove (or with `dry_run`, count) what every domain's retention says must go."""
    report = PurgeReport()
    started = time.monotonic()
    with Session(engine) as session:
        items = retention.due(session, now or datetime.now(UTC))
    for item in items:
        key = (item.domain_name, item.kind)
        if dry_run:
            with Session(engine) as session:
                count = retention.count_due(session, item)
            if count:
                report.rows[key] += count
            continue
        while True:
            if budget_s is not None and time.monotonic() - started > budget_s:
                report.incomplete = True
                return report
            with session_scope(engine) as session:
                done = retention.purge_batch(session, item, batch_rows)
            if not done:
                break
            report.batches += 1
            report.rows[key] += done
    return report


def purge_turn(engine: Engine) -> None:
    """The scheduler's turn: purge within the budget, log what went."""
    report = purge(engine, budget_s=PURGE_BUDGET_S)
    for (domain, kind), rows in sorted(report.rows.items()):
        log.info("retention.purged", domain=domain, kind=kind, rows=rows)
    if report.incomplete:
        log.info("retention.purge_continues", batches=report.batches)
