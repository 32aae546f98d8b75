"""Backups by the product: the scheduler's leader dumps the database on `DASHIN_BACKUP_CRON`
into `DASHIN_BACKUP_DIR`, verifies each archive by restoring it into a scratch database, and
keeps a rotation (the newest backup of each of the last `DASHIN_BACKUP_KEEP_DAILY` days and of
each of the last `DASHIN_BACKUP_KEEP_WEEKLY` ISO weeks).

A backup of a large database takes minutes, so it runs in a thread of its own: the leader's loop
keeps firing schedules and reaping meanwhile. The archive is written under a `.partial` name
and renamed only once verified, so the directory never holds a half-written `dashin-*.dump`,
and older archives are pruned only after a verified one exists. Every attempt is recorded in
`backups` (`/metrics` shows the age of the last verified one from any API replica); a failed
attempt is logged and notifies the platform admins.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from models import backups, tenancy_repo
from models.notifications_repo import notify_users
from models.schedule_timing import TriggerSpec, build_trigger, next_slot_after
from runtime.backup import Target, backup_verified
from runtime.db import session_scope
from runtime.errors import ConfigurationError
from runtime.logging import get_logger
from runtime.settings import Settings

log = get_logger("scheduler.backups")

_NAME = re.compile(r"^dashin-(\d{8}T\d{6}Z)\.dump$")
_STAMP = "%Y%m%dT%H%M%SZ"


def archive_name(at: datetime) -> str:
    return f"dashin-{at.astimezone(UTC).strftime(_STAMP)}.dump"


def to_keep(names: Iterable[str], keep_daily: int, keep_weekly: int) -> set[str]:
    """The archives a rotation keeps: the newest of each of the newest `keep_daily` days and of
    each of the newest `keep_weekly` ISO weeks. Names that are not ours are never touched."""
    stamped = sorted(
        ((datetime.strptime(m[1], _STAMP), n) for n in names if (m := _NAME.match(n))),
        reverse=True,
    )
    keep: set[str] = set()
    periods: list[tuple[Callable[[datetime], object], int]] = [
        (lambda t: t.date(), keep_daily),
        (lambda t: t.isocalendar()[:2], keep_weekly),
    ]
    for period, limit in periods:
        seen: list[object] = []
        for at, name in stamped:  # newest first: the first archive of a period is its newest
            key = period(at)
            if key in seen:
                continue
            if len(seen) == limit:
                break
            seen.append(key)
            keep.add(name)
    return keep


def prune(folder: Path, keep_daily: int, keep_weekly: int) -> list[str]:
    """Delete the archives the rotation no longer keeps; their names."""
    names = [p.name for p in folder.iterdir() if _NAME.match(p.name)]
    keep = to_keep(names, keep_daily, keep_weekly)
    gone = sorted(set(names) - keep)
    for name in gone:
        (folder / name).unlink(missing_ok=True)
    return gone


@dataclass(frozen=True)
class Outcome:
    file: Path | None
    error: str | None = None


def _tell_admins(engine: Engine, error: str, file: str) -> None:
    with session_scope(engine) as session:
        for user_id, domain_id in tenancy_repo.active_admins(session):
            if domain_id is not None:
                payload = {"error": error, "file": file}
                notify_users(session, domain_id, [user_id], "backup.failed", payload)


def run_backup(engine: Engine, settings: Settings, now: datetime) -> Outcome:
    """One backup attempt, recorded; never raises (a failure is an `Outcome` with an error)."""
    assert settings.backup_dir is not None
    folder = settings.backup_dir
    final = folder / archive_name(now)
    with session_scope(engine) as session:
        backup_id = backups.start(session, str(final), now)
    if backup_id is None:
        log.warning("backup.skipped", reason="another backup is running")
        return Outcome(None, "another backup is running")
    partial = final.with_name(final.name + ".partial")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        expected, restored = backup_verified(Target.parse(settings.require_database_url()), partial)
        if expected != restored:
            differ = sorted(
                t for t in set(expected) | set(restored) if expected.get(t) != restored.get(t)
            )
            raise RuntimeError(f"verify failed: row counts differ in {', '.join(differ)}")
        partial.rename(final)
    except Exception as exc:  # recorded and reported: the next slot tries again
        partial.unlink(missing_ok=True)
        error = str(exc)[:2000]
        with session_scope(engine) as session:
            backups.finish(session, backup_id, datetime.now(UTC), error=error)
        log.error("backup.failed", file=str(final), error=error)
        _tell_admins(engine, error, str(final))
        return Outcome(None, error)
    rows = sum(expected.values())
    with session_scope(engine) as session:
        backups.finish(
            session, backup_id, datetime.now(UTC), size_bytes=final.stat().st_size, rows=rows
        )
    pruned = prune(folder, settings.backup_keep_daily, settings.backup_keep_weekly)
    log.info("backup.verified", file=str(final), rows=rows, size_bytes=final.stat().st_size,
             pruned=pruned)  # fmt: skip
    return Outcome(final)


class BackupTimer:
    """When the next backup is due, and the thread running the current one (at most one)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        now: datetime,
        run: Callable[[Engine, Settings, datetime], Outcome] = run_backup,
    ) -> None:
        self._engine, self._settings, self._run = engine, settings, run
        # The schedules' own crontab reading, in UTC: one meaning of a cron line everywhere.
        spec = TriggerSpec(settings.backup_cron, "UTC", None, None, None, now)
        try:
            self._trigger = build_trigger(spec)
        except ValueError as exc:
            raise ConfigurationError(f"DASHIN_BACKUP_CRON: {exc}") from None
        self.next_at = self._after(now) if settings.backup_dir is not None else None
        self.thread: threading.Thread | None = None

    def _after(self, now: datetime) -> datetime | None:
        return next_slot_after(self._trigger, now)

    def due(self, now: datetime) -> bool:
        """Start a backup when its slot has come and none is running; True when one started."""
        if self.next_at is None or now < self.next_at:
            return False
        self.next_at = self._after(now)
        if self.thread is not None and self.thread.is_alive():
            log.warning("backup.skipped", reason="the previous backup is still running")
            return False
        self.thread = threading.Thread(
            target=self._run, args=(self._engine, self._settings, now),
            name="dashin-backup", daemon=True,
        )  # fmt: skip
        self.thread.start()
        return True
