"""`/metrics` series about the scheduler's backups, read from the `backups` table at scrape time.

The backup directory may be on another machine than the API, so the record in PostgreSQL is
what every replica reads. Alert on `dashin_backup_last_verified_age_seconds` (e.g. over 26 h
for nightly backups); it is absent until the first verified backup, so alert on absence too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from models import backups
from runtime.db import get_engine, session_scope


class BackupCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        with session_scope(get_engine()) as session:
            verified = backups.last(session, "verified")
            failed = backups.last(session, "failed")
            last_verified = verified.finished_at if verified else None
            last_failed = failed.finished_at if failed else None
        if last_verified is not None:
            age = (datetime.now(UTC) - last_verified).total_seconds()
            yield GaugeMetricFamily(
                "dashin_backup_last_verified_timestamp_seconds",
                "When the last verified backup finished (Unix time).",
                value=last_verified.timestamp(),
            )
            yield GaugeMetricFamily(
                "dashin_backup_last_verified_age_seconds",
                "Seconds since the last verified backup finished.",
                value=age,
            )
        if last_failed is not None:
            yield GaugeMetricFamily(
                "dashin_backup_last_failed_timestamp_seconds",
                "When the last failed backup attempt ended (Unix time).",
                value=last_failed.timestamp(),
            )
