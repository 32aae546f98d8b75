"""The schedule loop against a real database, driven by `tick(now)` with a controlled clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text, update
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from models import Job, Schedule, jobs_repo, row_security
from models.notify import pg_notify
from runtime.db import session_scope
from scheduler.config import LEADER_LOCK_KEY
from scheduler.leader import LeaderLock
from scheduler.loop import Scheduler
from tests.scheduler.conftest import T0, RecordingEnqueue, Source, schedule_jobs, schedule_row

AddSchedule = Callable[..., uuid.UUID]
MakeScheduler = Callable[..., Scheduler]
S = timedelta(seconds=1)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_interval_schedule_fires_on_time_and_keeps_the_row_current(
    engine: Engine,
    add_schedule: AddSchedule,
    make_scheduler: MakeScheduler,
    recorder: RecordingEnqueue,
) -> None:
    sid = add_schedule(interval_seconds=60, start_at=T0, params={"q": "cto"}, overlap="allow")
    scheduler = make_scheduler()
    assert schedule_row(engine, sid).next_run_at == T0

    # Just before the slot nothing happens
    assert scheduler.tick(T0 - S).fires == []
    assert schedule_jobs(engine, sid) == []

    # At the slot: one job, keyed by the slot, queued, enqueued after commit
    report = scheduler.tick(T0)
    assert [f.outcome for f in report.fires] == ["fired"]
    [job] = schedule_jobs(engine, sid)
    assert (job.slot_time, job.status, job.params, job.queue) == (
        T0,
        "queued",
        {"q": "cto"},
        "synthetic",
    )
    assert recorder.calls == [(job.id, "synthetic")]
    row = schedule_row(engine, sid)
    assert (row.last_fired_at, row.next_run_at) == (T0, T0 + 60 * S)

    # Ticking again in the same slot fires nothing more; the next slot fires once
    assert scheduler.tick(T0 + 30 * S).fires == []
    scheduler.tick(T0 + 60 * S)
    assert [j.slot_time for j in schedule_jobs(engine, sid)] == [T0, T0 + 60 * S]


def test_cron_in_berlin_fires_at_the_dst_instants(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    # Given "30 2 * * *" Europe/Berlin, overlap allow (no worker finishes these jobs)
    march = add_schedule(
        cron="30 2 * * *",
        timezone="Europe/Berlin",
        overlap="allow",
        created_at=_utc(2025, 3, 28),
        end_at=_utc(2025, 4, 1),
    )
    october = add_schedule(
        cron="30 2 * * *", timezone="Europe/Berlin", overlap="allow", created_at=_utc(2025, 10, 25)
    )
    scheduler = make_scheduler()
    # When the clock walks minute by minute-ish (every 10 min) across both changes
    for start, days in ((_utc(2025, 3, 28), 4), (_utc(2025, 10, 25), 3)):
        now = start
        while now < start + timedelta(days=days):
            scheduler.tick(now)
            now += timedelta(minutes=10)
    # Then the jobs' slots are exactly APScheduler's instants
    assert [j.slot_time for j in schedule_jobs(engine, march)] == [
        _utc(2025, 3, 28, 1, 30),
        _utc(2025, 3, 29, 1, 30),
        _utc(2025, 3, 30, 1, 30),  # 02:30 does not exist that day: fires at 02:30+01:00
        _utc(2025, 3, 31, 0, 30),
    ]
    assert [j.slot_time for j in schedule_jobs(engine, october)] == [
        _utc(2025, 10, 25, 0, 30),
        _utc(2025, 10, 26, 0, 30),  # 02:30 CEST
        _utc(2025, 10, 26, 1, 30),  # 02:30 CET: the repeated hour fires again
        _utc(2025, 10, 27, 1, 30),
    ]


def test_disabled_schedule_never_fires_and_has_no_next_run(
    engine: Engine,
    add_schedule: AddSchedule,
    make_scheduler: MakeScheduler,
    recorder: RecordingEnqueue,
) -> None:
    sid = add_schedule(interval_seconds=1, start_at=T0, enabled=False)
    scheduler = make_scheduler()
    for step in range(5):
        scheduler.tick(T0 + step * S)
    assert schedule_jobs(engine, sid) == []
    assert recorder.calls == []
    assert schedule_row(engine, sid).next_run_at is None


def test_disabling_without_notify_is_still_honoured_at_fire_time(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    # Given a mirrored schedule, then disabled in the table with no NOTIFY reaching us
    sid = add_schedule(interval_seconds=60, start_at=T0)
    scheduler = make_scheduler()
    with session_scope(engine) as session:
        session.execute(update(Schedule).where(Schedule.id == sid).values(enabled=False))
    # When its slot comes, the fire re-reads the locked row and refuses
    assert scheduler.tick(T0).fires == []
    assert schedule_jobs(engine, sid) == []
    assert scheduler.next_slot(sid) is None


def test_edit_with_notify_is_picked_up(
    engine: Engine,
    db_url: str,
    add_schedule: AddSchedule,
    make_scheduler: MakeScheduler,
) -> None:
    sid = add_schedule(interval_seconds=3600, start_at=T0, overlap="allow")
    scheduler = make_scheduler()
    lock = LeaderLock(db_url, LEADER_LOCK_KEY)
    assert lock.try_acquire()
    try:
        # When the API changes the schedule to every 10 s from T0 + 5 s, and notifies
        with session_scope(engine) as session:
            session.execute(
                update(Schedule)
                .where(Schedule.id == sid)
                .values(interval_seconds=10, start_at=T0 + 5 * S)
            )
            pg_notify(session, "schedules", str(sid))
        changed = lock.wait_for_notifications(timeout=5.0)
    finally:
        lock.release()
    assert changed == {str(sid)}
    scheduler.refresh(changed)
    # Then the new trigger drives the next fires, and the row shows it
    assert scheduler.next_slot(sid) == T0 + 5 * S
    assert schedule_row(engine, sid).next_run_at == T0 + 5 * S
    scheduler.tick(T0 + 5 * S)
    scheduler.tick(T0 + 15 * S)
    assert [j.slot_time for j in schedule_jobs(engine, sid)] == [T0 + 5 * S, T0 + 15 * S]


def test_start_and_end_are_honoured(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    sid = add_schedule(
        cron="* * * * *", overlap="allow", start_at=T0 + 120 * S, end_at=T0 + 240 * S
    )
    scheduler = make_scheduler()
    for minute in range(8):
        scheduler.tick(T0 + minute * 60 * S)
    assert [j.slot_time for j in schedule_jobs(engine, sid)] == [
        T0 + 120 * S,
        T0 + 180 * S,
        T0 + 240 * S,
    ]
    assert schedule_row(engine, sid).next_run_at is None  # ended


def test_jitter_delays_the_enqueue_but_not_the_slot(
    engine: Engine,
    add_schedule: AddSchedule,
    make_scheduler: MakeScheduler,
    recorder: RecordingEnqueue,
) -> None:
    # Given a 40 s jitter and a jitter source that picks 50 % of it (20 s)
    sid = add_schedule(interval_seconds=600, start_at=T0, jitter_seconds=40)
    scheduler = make_scheduler(jitter_fraction=0.5)
    [fire] = scheduler.tick(T0).fires
    # Then the job exists and is queued for the un-jittered slot, but is not enqueued yet
    [job] = schedule_jobs(engine, sid)
    assert (job.slot_time, job.status) == (T0, "queued")
    assert fire.enqueue_at == T0 + 20 * S
    assert recorder.calls == []
    assert scheduler.next_wakeup() == T0 + 20 * S
    assert scheduler.tick(T0 + 19 * S).enqueued == []
    assert scheduler.tick(T0 + 20 * S).enqueued == [job.id]
    assert recorder.job_ids == [job.id]


def test_jitter_is_capped_by_the_queued_grace(
    add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    add_schedule(interval_seconds=600, start_at=T0, jitter_seconds=3600)
    scheduler = make_scheduler(jitter_fraction=1.0, queued_grace_s=60)
    [fire] = scheduler.tick(T0).fires
    assert fire.enqueue_at == T0 + 60 * S


def test_misfires_coalesce_into_one_fire_within_the_grace(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    # Given a minutely schedule and a scheduler that was down for 10 minutes
    sid = add_schedule(interval_seconds=60, start_at=T0, overlap="allow")
    scheduler = make_scheduler(grace_s=300)
    # When it comes back at T0 + 10 min + 5 s
    report = scheduler.tick(T0 + 605 * S)
    # Then it fires once, for the latest missed slot, and continues on the grid
    assert [(f.slot, f.outcome) for f in report.fires] == [(T0 + 600 * S, "fired")]
    assert [j.slot_time for j in schedule_jobs(engine, sid)] == [T0 + 600 * S]
    assert schedule_row(engine, sid).next_run_at == T0 + 660 * S


def test_misfires_older_than_the_grace_are_dropped(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    sid = add_schedule(interval_seconds=3600, start_at=T0)
    scheduler = make_scheduler(grace_s=60)
    assert scheduler.tick(T0 + 61 * S).fires == []
    assert schedule_jobs(engine, sid) == []
    assert schedule_row(engine, sid).next_run_at == T0 + 3600 * S


def test_a_restarted_scheduler_continues_after_the_last_fired_slot(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    sid = add_schedule(interval_seconds=60, start_at=T0, overlap="allow")
    make_scheduler().tick(T0)
    # A new process (fresh mirror) at the same instant does not fire the slot again
    fresh = make_scheduler()
    assert fresh.next_slot(sid) == T0 + 60 * S
    assert fresh.tick(T0 + 1 * S).fires == []
    fresh.tick(T0 + 60 * S)
    assert [j.slot_time for j in schedule_jobs(engine, sid)] == [T0, T0 + 60 * S]


def test_two_schedulers_on_one_slot_create_one_job(
    engine: Engine,
    add_schedule: AddSchedule,
    make_scheduler: MakeScheduler,
    recorder: RecordingEnqueue,
) -> None:
    # Two leaders during a handover both believe the slot is theirs
    sid = add_schedule(interval_seconds=60, start_at=T0, overlap="allow")
    first, second = make_scheduler(), make_scheduler()
    outcomes = [f.outcome for f in first.tick(T0).fires + second.tick(T0).fires]
    assert outcomes == ["fired", "duplicate"]
    assert len(schedule_jobs(engine, sid)) == 1
    assert len(recorder.calls) == 1


def _set_status(engine: Engine, job_id: uuid.UUID, status: str, **values: object) -> None:
    with session_scope(engine) as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=status, **values))


def test_overlap_skip_counts_and_logs_while_the_previous_run_is_live(
    engine: Engine,
    add_schedule: AddSchedule,
    make_scheduler: MakeScheduler,
) -> None:
    sid = add_schedule(interval_seconds=60, start_at=T0)  # overlap defaults to skip
    scheduler = make_scheduler()
    scheduler.tick(T0)
    [first] = schedule_jobs(engine, sid)
    _set_status(engine, first.id, "running", heartbeat_at=text("now()"))  # a slow job
    # When two more slots come while it runs
    with capture_logs() as logs:
        outcomes = [f.outcome for f in scheduler.tick(T0 + 60 * S).fires]
        outcomes += [f.outcome for f in scheduler.tick(T0 + 120 * S).fires]
    skipped = [line for line in logs if line["event"] == "schedule.skipped"]
    assert [line["slot"] for line in skipped] == [
        (T0 + 60 * S).isoformat(),
        (T0 + 120 * S).isoformat(),
    ]
    # Then no second run starts, and the skips are visible on the schedule
    assert outcomes == ["skipped", "skipped"]
    assert [j.id for j in schedule_jobs(engine, sid)] == [first.id]
    row = schedule_row(engine, sid)
    assert (row.skipped_count, row.last_skipped_at) == (2, T0 + 120 * S)
    assert row.next_run_at == T0 + 180 * S
    # Once it completes, the next slot fires
    _set_status(engine, first.id, "completed")
    assert [f.outcome for f in scheduler.tick(T0 + 180 * S).fires] == ["fired"]


def test_overlap_skip_treats_rate_limited_pause_as_live_but_not_a_user_pause(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    sid = add_schedule(interval_seconds=60, start_at=T0, overlap="skip")
    scheduler = make_scheduler()
    scheduler.tick(T0)
    [first] = schedule_jobs(engine, sid)
    _set_status(engine, first.id, "paused", pause_reason="rate_limited")
    assert [f.outcome for f in scheduler.tick(T0 + 60 * S).fires] == ["skipped"]
    _set_status(engine, first.id, "paused", pause_reason="user")
    assert [f.outcome for f in scheduler.tick(T0 + 120 * S).fires] == ["fired"]


def test_overlap_queue_holds_one_run_until_the_previous_finishes(
    engine: Engine,
    add_schedule: AddSchedule,
    make_scheduler: MakeScheduler,
    recorder: RecordingEnqueue,
) -> None:
    sid = add_schedule(interval_seconds=60, start_at=T0, overlap="queue")
    scheduler = make_scheduler()
    scheduler.tick(T0)
    [first] = schedule_jobs(engine, sid)
    _set_status(engine, first.id, "running", heartbeat_at=text("now()"))
    # While it runs: the next slot waits (pending, not enqueued); a third is skipped
    assert [f.outcome for f in scheduler.tick(T0 + 60 * S).fires] == ["waiting"]
    assert [f.outcome for f in scheduler.tick(T0 + 120 * S).fires] == ["skipped"]
    jobs = schedule_jobs(engine, sid)
    assert [(j.slot_time, j.status) for j in jobs] == [(T0, "running"), (T0 + 60 * S, "pending")]
    assert recorder.job_ids == [first.id]
    # When the first finishes, the waiting run starts on the next tick
    _set_status(engine, first.id, "completed")
    report = scheduler.tick(T0 + 130 * S)
    assert report.started_waiting == [jobs[1].id]
    assert recorder.job_ids == [first.id, jobs[1].id]
    assert schedule_jobs(engine, sid)[1].status == "queued"
    assert schedule_row(engine, sid).skipped_count == 1


def test_overlap_allow_starts_runs_side_by_side(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    sid = add_schedule(interval_seconds=60, start_at=T0, overlap="allow")
    scheduler = make_scheduler()
    scheduler.tick(T0)
    _set_status(engine, schedule_jobs(engine, sid)[0].id, "running", heartbeat_at=text("now()"))
    scheduler.tick(T0 + 60 * S)
    assert [j.status for j in schedule_jobs(engine, sid)] == ["running", "queued"]


def test_invalid_schedule_is_logged_and_ignored(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler
) -> None:
    bad = add_schedule(cron="61 * * * *")
    good = add_schedule(interval_seconds=60, start_at=T0)
    scheduler = make_scheduler()
    assert scheduler.next_slot(bad) is None
    assert [f.schedule_id for f in scheduler.tick(T0).fires] == [good]


def test_a_source_over_its_monthly_credit_budget_skips_the_run_with_a_log_line(
    engine: Engine, add_schedule: AddSchedule, make_scheduler: MakeScheduler, source: Source
) -> None:
    from models.credits import CreditEntry
    from models.sources import DataSource

    with session_scope(engine) as session:
        session.execute(
            update(DataSource)
            .where(DataSource.id == source.data_source_id)
            .values(monthly_credit_budget=10)
        )
        session.add(
            CreditEntry(
                domain_id=source.domain_id,
                data_source_id=source.data_source_id,
                day=datetime.now(UTC).date(),
                credits=10,
            )
        )
    sid = add_schedule(interval_seconds=60, start_at=T0)
    scheduler = make_scheduler()
    with capture_logs() as logs:
        assert [f.outcome for f in scheduler.tick(T0).fires] == ["over_budget"]
    assert [line["event"] for line in logs] == ["schedule.skipped_over_budget"]
    assert schedule_jobs(engine, sid) == []
    assert schedule_row(engine, sid).skipped_count == 1
    with session_scope(engine) as session:
        session.execute(
            update(DataSource)
            .where(DataSource.id == source.data_source_id)
            .values(monthly_credit_budget=100)
        )
    assert [f.outcome for f in scheduler.tick(T0 + 60 * S).fires] == ["fired"]


def test_a_firing_acts_for_its_schedules_domain_under_row_level_security(
    engine: Engine,
    add_schedule: AddSchedule,
    make_scheduler: MakeScheduler,
    source: Source,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 20: the fire transaction runs as the application role with the schedule's domain
    set, so the job it creates passes the policies and nothing of another domain is in reach."""
    sid = add_schedule(interval_seconds=60, start_at=T0, overlap="allow")
    seen: list[tuple[str, object]] = []
    create_job = jobs_repo.create_job

    def spy(session: Session, **values: Any) -> Any:
        seen.append(row_security.current(session.connection()))
        return create_job(session, **values)

    monkeypatch.setattr(jobs_repo, "create_job", spy)
    assert [f.outcome for f in make_scheduler().tick(T0).fires] == ["fired"]
    assert seen == [(row_security.APP_ROLE, str(source.domain_id))]
    assert len(schedule_jobs(engine, sid)) == 1
