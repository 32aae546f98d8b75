"""Job log lines: numbered by the per-job `jobs.log_seq` counter (ARCHITECTURE §8).

Every transaction that adds lines bumps `log_seq` first, which also takes the job's row lock
(`models.job_states`, the job row's only writer, reserves the numbers and calls
`insert_lines`), so `(job_id, seq)` is unique and commit-ordered per job, and sends at most one
`NOTIFY job_logs, 'job_id:last_seq'` so tails wake without reading the message off the wire.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models.jobs import LOG_LEVELS, JobLog
from models.notify import pg_notify

LEVEL_RANK = {level: rank for rank, level in enumerate(LOG_LEVELS)}


@dataclass(frozen=True, slots=True)
class LogLine:
    level: str
    event: str
    message: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    ts: datetime | None = None


def insert_lines(
    session: Session, job_id: uuid.UUID, first_seq: int, lines: Sequence[LogLine]
) -> None:
    """Insert lines numbered from `first_seq` (the caller already reserved the numbers)."""
    if not lines:
        return
    rows = []
    for offset, line in enumerate(lines):
        row: dict[str, Any] = {
            "job_id": job_id,
            "seq": first_seq + offset,
            "level": line.level,
            "event": line.event[:100],
            "message": line.message,
            "fields": _jsonable(line.fields),
        }
        if line.ts is not None:
            row["ts"] = line.ts
        rows.append(row)
    session.execute(insert(JobLog), rows)
    pg_notify(session, "job_logs", f"{job_id}:{first_seq + len(lines) - 1}")


def tail(
    session: Session,
    job_id: uuid.UUID,
    *,
    after_seq: int = 0,
    min_level: str | None = None,
    limit: int = 200,
) -> list[JobLog]:
    query = select(JobLog).where(JobLog.job_id == job_id, JobLog.seq > after_seq)
    if min_level:
        allowed = [lvl for lvl in LOG_LEVELS if LEVEL_RANK[lvl] >= LEVEL_RANK[min_level]]
        query = query.where(JobLog.level.in_(allowed))
    return list(session.scalars(query.order_by(JobLog.seq).limit(limit)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
