"""The leader's schedule loop: mirror the schedules table, fire due slots, start waiting runs.

Why our own loop over APScheduler triggers rather than APScheduler's `BackgroundScheduler`:
- the table is the source of truth and several processes run; APScheduler's job stores fire
  twice when shared and know nothing of leaders (NOTES.md);
- APScheduler 3.11 does not tell a job which slot it fires for and adds jitter inside the
  trigger; we need the un-jittered slot as the job's unique key and jitter on the enqueue only;
- tests must drive time: `tick(now)` takes the instant as an argument, so a test walks a DST
  change or a week of downtime in milliseconds, and the process loop (`scheduler.service`) merely
  calls `tick(clock())` when the next slot, a NOTIFY or the resync is due.

Exactly one fire per slot: a fire is one transaction that locks the schedule row, re-checks it
(enabled, trigger unchanged, slot not yet handled), applies the overlap policy, inserts the job
keyed by (schedule_id, slot_time) with ON CONFLICT DO NOTHING, moves it to `queued` and records
`last_fired_at`/`next_run_at`. Two leaders during a handover, a restart or a catch-up can only
find the slot taken. The enqueue happens after commit, at `slot + jitter`.

Policies (docs/scheduler.md has the long version):
- misfire: when the next slot has passed, fire once, for the latest due slot within
  `misfire_grace_s` (coalesce); older slots are dropped and logged.
- overlap skip: a live previous run (see `store.live_run_clause`) → no job; `skipped_count`
  and `last_skipped_at` (= the slot) are updated and `schedule.skipped` is logged.
- overlap queue: a live previous run → the job is created `pending` and started by a later tick
  once the previous run is over. At most one run waits; a further slot is skipped and counted.
- overlap allow: always fire.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models import credits, job_states, jobs_repo, row_security
from models import scheduler_store as store
from models.schedules import Schedule
from runtime.db import session_scope
from runtime.errors import DashinError, InvalidTransition
from runtime.logging import get_logger
from scheduler.config import SchedulerConfig
from scheduler.triggers import DueSlots, TriggerSpec, build_trigger, due_slots, first_slot
from workers.enqueue import enqueue_job

Enqueue = Callable[[uuid.UUID, str], None]
Jitter = Callable[[int], float]
Outcome = Literal["fired", "waiting", "skipped", "over_budget", "duplicate"]
_EVENTS: dict[Outcome, str] = {
    "fired": "schedule.fired",
    "waiting": "schedule.waiting",
    "skipped": "schedule.skipped",
    "over_budget": "schedule.skipped_over_budget",
    "duplicate": "schedule.duplicate",
}

log = get_logger("scheduler")


def utc_now() -> datetime:
    return datetime.now(UTC)


def uniform_jitter(max_seconds: int) -> float:
    return random.uniform(0, max_seconds)


@dataclass(frozen=True, slots=True)
class Fire:
    """What happened to one slot."""

    schedule_id: uuid.UUID
    slot: datetime
    outcome: Outcome
    job_id: uuid.UUID | None = None
    enqueue_at: datetime | None = None


@dataclass(slots=True)
class TickReport:
    fires: list[Fire] = field(default_factory=list)
    started_waiting: list[uuid.UUID] = field(default_factory=list)
    enqueued: list[uuid.UUID] = field(default_factory=list)


@dataclass(slots=True)
class _Entry:
    id: uuid.UUID
    domain_id: uuid.UUID
    spec: TriggerSpec
    trigger: BaseTrigger
    cursor: datetime | None  # the last handled (fired or skipped) slot
    next_slot: datetime | None


def _cursor(row: Schedule) -> datetime | None:
    handled = [t for t in (row.last_fired_at, row.last_skipped_at) if t is not None]
    return max(handled) if handled else None


class Scheduler:
    """In-memory mirror of the enabled schedules plus the pending (jittered) enqueues."""

    def __init__(
        self,
        engine: Engine,
        config: SchedulerConfig,
        *,
        queued_grace_s: float,
        enqueue: Enqueue = enqueue_job,
        jitter: Jitter = uniform_jitter,
    ) -> None:
        self._engine = engine
        self._config = config
        # A jitter longer than the reaper's grace would be cut short by `requeue_lost` anyway.
        self._max_jitter_s = queued_grace_s
        self._enqueue = enqueue
        self._jitter = jitter
        self._entries: dict[uuid.UUID, _Entry] = {}
        self._pending: list[tuple[datetime, int, uuid.UUID, str]] = []
        self._seq = 0

    # ---- mirroring the table -------------------------------------------------------------

    def resync(self) -> None:
        """Re-read the whole table (on election and periodically: the NOTIFY safety net)."""
        with session_scope(self._engine) as session:
            rows = store.load_schedules(session)
            previous, self._entries = self._entries, {}
            for row in rows:
                self._load(session, row, previous.get(row.id))

    def refresh(self, ids: Iterable[uuid.UUID | str]) -> None:
        """Reload the named schedules (NOTIFY payloads); a vanished id is dropped."""
        wanted: set[uuid.UUID] = set()
        for raw in ids:
            try:
                wanted.add(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))
            except ValueError:
                log.warning("schedule.bad_notify", payload=str(raw))
        if not wanted:
            return
        with session_scope(self._engine) as session:
            rows = {row.id: row for row in store.load_schedules(session, wanted)}
            for schedule_id in wanted:
                old = self._entries.pop(schedule_id, None)
                row = rows.get(schedule_id)
                if row is not None:
                    self._load(session, row, old)
                elif old is not None:
                    log.info("schedule.removed", schedule_id=str(schedule_id))

    def clear(self) -> None:
        """Forget the mirror (stepping down); pending enqueues are kept (see `flush_enqueues`)."""
        self._entries = {}

    def next_slot(self, schedule_id: uuid.UUID) -> datetime | None:
        entry = self._entries.get(schedule_id)
        return entry.next_slot if entry else None

    def next_wakeup(self) -> datetime | None:
        """The earliest instant a tick has work: a slot or a jittered enqueue."""
        times = [e.next_slot for e in self._entries.values() if e.next_slot is not None]
        if self._pending:
            times.append(self._pending[0][0])
        return min(times) if times else None

    def _load(self, session: Session, row: Schedule, old: _Entry | None = None) -> None:
        """Mirror one row: keep `old` if its trigger and cursor are unchanged, else rebuild."""
        if not row.enabled:
            if row.next_run_at is not None:
                store.set_next_run(session, row.id, None)
            return
        spec = TriggerSpec.from_row(row)
        cursor = _cursor(row)
        if old is not None and old.spec == spec and old.cursor == cursor:
            self._entries[row.id] = old
            return
        try:
            trigger = build_trigger(spec)
            entry = _Entry(
                row.id, row.domain_id, spec, trigger, cursor, first_slot(trigger, spec, cursor)
            )
        except ValueError as exc:
            log.error("schedule.invalid", schedule_id=str(row.id), error=str(exc))
            if row.next_run_at is not None:
                store.set_next_run(session, row.id, None)
            return
        self._entries[row.id] = entry
        if row.next_run_at != entry.next_slot:
            store.set_next_run(session, row.id, entry.next_slot)

    # ---- one turn ------------------------------------------------------------------------

    def tick(self, now: datetime) -> TickReport:
        """Do everything due at `now`: start waiting runs, fire due slots, send due enqueues."""
        report = TickReport()
        self._start_waiting(report, now)
        for entry in list(self._entries.values()):
            if entry.next_slot is None or entry.next_slot > now:
                continue
            due = due_slots(entry.trigger, entry.next_slot, now, self._config.misfire_grace_s)
            if due.missed:
                log.warning(
                    "schedule.misfired",
                    schedule_id=str(entry.id),
                    first_missed=entry.next_slot.isoformat(),
                    grace_s=self._config.misfire_grace_s,
                )
            if due.coalesced:
                log.info("schedule.coalesced", schedule_id=str(entry.id), slots=due.coalesced + 1)
            try:
                fire = self._fire(entry, due, now)
            except DashinError as exc:
                log.error("schedule.fire_failed", schedule_id=str(entry.id), error=str(exc))
                entry.next_slot = due.next_slot
                continue
            if fire is not None:
                report.fires.append(fire)
        report.enqueued.extend(self.flush_enqueues(now))
        return report

    def _fire(self, entry: _Entry, due: DueSlots, now: datetime) -> Fire | None:
        slot = due.fire
        queue: str | None = None
        job_id: uuid.UUID | None = None
        with session_scope(self._engine) as session:
            # a firing acts for its schedule's domain: row-level security stands behind it
            row_security.act_for_domain(session, entry.domain_id)
            row = store.lock_schedule(session, entry.id)
            if row is None or not row.enabled or TriggerSpec.from_row(row) != entry.spec:
                # Edited or disabled since we last looked: reload and decide on the next tick.
                self._entries.pop(entry.id, None)
                if row is not None:
                    self._load(session, row)
                return None
            row.next_run_at = due.next_slot
            if slot is None:
                outcome: Outcome | None = None
            else:
                outcome, job_id = self._apply_policy(session, row, slot)
                if outcome == "fired" and job_id is not None:
                    queue = job_states.start(session, job_id).queue
            cursor = _cursor(row)
            jitter_s = min(float(row.jitter_seconds), self._max_jitter_s)
        # Committed: only now may the mirror move on (a failed commit retries the slot).
        entry.cursor = cursor
        entry.next_slot = due.next_slot
        if slot is None or outcome is None:
            return None
        enqueue_at = None
        if queue is not None and job_id is not None:
            delay = self._jitter(int(jitter_s)) if jitter_s > 0 else 0.0
            enqueue_at = max(now, slot + timedelta(seconds=delay))
            self._push(enqueue_at, job_id, queue)
        log.info(
            _EVENTS[outcome],
            schedule_id=str(entry.id),
            slot=slot.isoformat(),
            job_id=str(job_id) if job_id else None,
            enqueue_at=enqueue_at.isoformat() if enqueue_at else None,
        )
        return Fire(entry.id, slot, outcome, job_id, enqueue_at)

    def _apply_policy(
        self, session: Session, row: Schedule, slot: datetime
    ) -> tuple[Outcome, uuid.UUID | None]:
        handled = _cursor(row)
        if handled is not None and handled >= slot:
            return "duplicate", None
        live = row.overlap != "allow" and store.has_live_run(session, row.id)
        if live and (row.overlap == "skip" or store.has_waiting_run(session, row.id)):
            row.skipped_count += 1
            row.last_skipped_at = slot
            return "skipped", None
        if credits.monthly_budget_spent(session, row.data_source_id):
            # a run would pause at its first paid call: not started, counted as skipped
            row.skipped_count += 1
            row.last_skipped_at = slot
            return "over_budget", None
        job = jobs_repo.create_job(
            session,
            domain_id=row.domain_id,
            data_source_id=row.data_source_id,
            campaign_id=row.campaign_id,
            params=dict(row.params or {}),
            created_by=row.created_by,
            schedule_id=row.id,
            slot_time=slot,
        )
        row.last_fired_at = max(slot, row.last_fired_at or slot)
        if job is None:
            return "duplicate", None
        return ("waiting" if live else "fired"), job.id

    def _start_waiting(self, report: TickReport, now: datetime) -> None:
        """queue policy: start the oldest waiting run of each schedule whose previous run ended."""
        started: list[tuple[uuid.UUID, str]] = []
        with session_scope(self._engine) as session:
            for job_id in store.waiting_runs_to_start(session):
                try:
                    moved = job_states.start(session, job_id)
                except InvalidTransition:
                    continue  # cancelled, or started by another leader, meanwhile
                started.append((moved.id, moved.queue))
        for job_id, queue in started:
            log.info("schedule.waiting_started", job_id=str(job_id))
            report.started_waiting.append(job_id)
            self._push(now, job_id, queue)

    # ---- enqueues after commit -----------------------------------------------------------

    def _push(self, at: datetime, job_id: uuid.UUID, queue: str) -> None:
        self._seq += 1
        heapq.heappush(self._pending, (at, self._seq, job_id, queue))

    def flush_enqueues(self, now: datetime | None = None) -> list[uuid.UUID]:
        """Enqueue the committed jobs whose time has come (all of them when `now` is None).

        A failed enqueue is logged and left to the reaper, which re-enqueues jobs queued for
        longer than `queued_grace_s`.
        """
        sent: list[uuid.UUID] = []
        while self._pending and (now is None or self._pending[0][0] <= now):
            _, _, job_id, queue = heapq.heappop(self._pending)
            try:
                self._enqueue(job_id, queue)
            except Exception as exc:
                log.error("schedule.enqueue_failed", job_id=str(job_id), error=str(exc))
                continue
            sent.append(job_id)
        return sent
