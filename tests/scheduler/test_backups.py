"""Backups by the product (issue 18): the leader dumps, verifies by restoring, keeps a rotation,
records each attempt for `/metrics`, and tells the platform admins when one fails."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from api.backup_metrics import BackupCollector
from models.backups import Backup
from models.notifications import Notification
from models.tenancy import User
from runtime.errors import ConfigurationError
from runtime.settings import Settings, load_settings
from scheduler import backups
from scheduler.backups import BackupTimer, Outcome, archive_name, prune, run_backup, to_keep
from tests.factories import make_domain, make_user

NOW = datetime(2026, 12, 4, 2, 15, tzinfo=UTC)  # a Friday


def _settings(db_url: str, folder: Path, **more: object) -> Settings:
    return load_settings(database_url=db_url, backup_dir=folder, **more)


def test_the_rotation_keeps_the_newest_of_each_recent_day_and_week() -> None:
    # Two archives a day for 40 days, and a file that is not ours
    stamps = [NOW - timedelta(days=d, hours=h) for d in range(40) for h in (0, 5)]
    names = [archive_name(t) for t in stamps] + ["notes.txt"]
    keep = to_keep(names, keep_daily=7, keep_weekly=4)
    days = sorted({t.date() for t in stamps}, reverse=True)[:7]
    newest_of_day = {archive_name(max(t for t in stamps if t.date() == d)) for d in days}
    weeks = sorted({t.isocalendar()[:2] for t in stamps}, reverse=True)[:4]
    newest_of_week = {
        archive_name(max(t for t in stamps if t.isocalendar()[:2] == w)) for w in weeks
    }
    assert keep == newest_of_day | newest_of_week
    assert "notes.txt" not in keep
    assert len(keep) <= 7 + 4


def test_prune_deletes_only_our_archives_that_the_rotation_drops(tmp_path: Path) -> None:
    for days in range(10):
        (tmp_path / archive_name(NOW - timedelta(days=days))).write_bytes(b"x")
    (tmp_path / "keep-me.dump").write_bytes(b"mine")
    gone = prune(tmp_path, keep_daily=3, keep_weekly=0)
    assert len(gone) == 7
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(
        [*(archive_name(NOW - timedelta(days=d)) for d in range(3)), "keep-me.dump"]
    )


def test_a_backup_is_verified_recorded_and_rotated(
    engine: Engine, db_url: str, tmp_path: Path, settings_env: None
) -> None:
    domain = make_domain(engine)
    make_user(engine, domain)
    old = [tmp_path / archive_name(NOW - timedelta(days=d)) for d in range(1, 12)]
    for path in old:
        path.write_bytes(b"an older archive")
    settings = _settings(db_url, tmp_path, backup_keep_daily=3, backup_keep_weekly=0)

    outcome = run_backup(engine, settings, NOW)

    assert outcome.error is None and outcome.file == tmp_path / archive_name(NOW)
    assert outcome.file.stat().st_size > 0
    assert not list(tmp_path.glob("*.partial"))
    # the rotation kept today's and the two newest older ones
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [archive_name(NOW), old[0].name, old[1].name]
    )
    with Session(engine) as session:
        row = session.scalars(select(Backup)).one()
        assert (row.status, row.file, row.error) == ("verified", str(outcome.file), None)
        assert row.size_bytes == outcome.file.stat().st_size
        users = session.scalar(select(text("count(*)")).select_from(User))
        assert row.rows is not None and users is not None and row.rows >= users
    # /metrics on any API replica can say how old it is
    families = {m.name: m for m in BackupCollector().collect()}
    age = families["dashin_backup_last_verified_age_seconds"].samples[0].value
    assert age >= 0
    assert "dashin_backup_last_failed_timestamp_seconds" not in families


def test_a_failed_backup_is_recorded_leaves_no_archive_and_tells_the_platform_admins(
    engine: Engine, db_url: str, tmp_path: Path, settings_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_domain(engine)
    admin = make_user(engine, home)
    with Session(engine) as session, session.begin():
        session.execute(update(User).where(User.id == admin).values(is_admin=True))
    bystander = make_user(engine, make_domain(engine))

    def broken(target: object, file: Path) -> tuple[dict[str, int], dict[str, int]]:
        file.write_bytes(b"half an archive")
        raise RuntimeError("pg_dump failed: disk full")

    monkeypatch.setattr(backups, "backup_verified", broken)
    outcome = run_backup(engine, _settings(db_url, tmp_path), NOW)

    assert outcome.error == "pg_dump failed: disk full"
    assert list(tmp_path.iterdir()) == []  # neither the archive nor its partial
    with Session(engine) as session:
        row = session.scalars(select(Backup)).one()
        assert (row.status, row.error) == ("failed", "pg_dump failed: disk full")
        told = session.execute(select(Notification.user_id, Notification.kind)).all()
    assert told == [(admin, "backup.failed")]
    assert bystander not in [u for u, _ in told]
    families = {m.name for m in BackupCollector().collect()}
    assert families == {"dashin_backup_last_failed_timestamp_seconds"}


def test_the_timer_starts_one_backup_per_slot_and_skips_while_one_runs(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    release = threading.Event()
    started: list[datetime] = []

    def slow(_engine: Engine, _settings: Settings, at: datetime) -> Outcome:
        started.append(at)
        release.wait(10)
        return Outcome(None)

    settings = _settings(db_url, tmp_path, backup_cron="15 2 * * *")
    timer = BackupTimer(engine, settings, NOW - timedelta(minutes=1), run=slow)
    assert timer.next_at == NOW
    assert timer.due(NOW - timedelta(seconds=1)) is False
    assert timer.due(NOW) is True
    assert timer.next_at == NOW + timedelta(days=1)
    # the next slot comes while the first backup still runs: skipped, not stacked
    assert timer.due(NOW + timedelta(days=1)) is False
    assert timer.next_at == NOW + timedelta(days=2)
    release.set()
    assert timer.thread is not None
    timer.thread.join(10)
    assert started == [NOW]


def test_backups_are_off_without_a_folder_and_a_bad_cron_is_refused(
    engine: Engine, db_url: str
) -> None:
    timer = BackupTimer(engine, load_settings(database_url=db_url, backup_dir=None), NOW)
    assert timer.next_at is None and timer.due(NOW + timedelta(days=400)) is False
    bad = load_settings(database_url=db_url, backup_dir="/tmp/x", backup_cron="61 * * * *")
    with pytest.raises(ConfigurationError, match="DASHIN_BACKUP_CRON"):
        BackupTimer(engine, bad, NOW)
