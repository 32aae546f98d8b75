"""PostgreSQL NOTIFY helpers. Payloads carry ids only; listeners re-read the tables.

NOTIFY takes a cluster-wide lock at commit (NOTES.md): callers send at most one per job per
transaction, and identical payloads in one transaction fold into one.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNELS = frozenset(
    {"job_logs", "job_status", "notifications", "schedules", "campaign_metrics", "domain_events"}
)


def pg_notify(session: Session, channel: str, payload: str) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"unknown NOTIFY channel {channel!r}")
    session.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
    )
