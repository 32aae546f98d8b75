"""models.job_statuses: the one declaration of job statuses and moves, and what derives from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import psycopg

from api import console as api_console
from api.console.jobs import ACTIONS_FROM
from api.routes.jobs import JobStatus
from models.job_statuses import (
    HELD_STATUSES,
    JOB_STATUSES,
    MOVES,
    STATUSES,
    STOPPING_STATUSES,
    TERMINAL_STATUSES,
    USER_MOVES,
)


def test_the_migrated_check_constraint_allows_exactly_the_declared_statuses(db_url: str) -> None:
    """A status declared without its migration (or the reverse) fails here."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'jobs'::regclass AND conname = 'ck_jobs_status_valid'"
        ).fetchone()
    assert row is not None
    assert sorted(re.findall(r"'(\w+)'", row[0])) == sorted(JOB_STATUSES)


def test_api_enum_and_console_buttons_derive_from_the_declaration() -> None:
    assert get_args(JobStatus) == JOB_STATUSES
    assert set(ACTIONS_FROM) == set(USER_MOVES) == {"start", "pause", "resume", "cancel"}
    assert ACTIONS_FROM["cancel"] == ("pending", "queued", "paused", "running", "pausing")


def test_the_declared_moves_match_the_lifecycle_table() -> None:
    assert TERMINAL_STATUSES == ("completed", "failed", "cancelled")
    assert HELD_STATUSES == ("running", "pausing", "cancelling")
    assert STOPPING_STATUSES == ("pausing", "cancelling")
    # a terminal status is left only by `start` (a failed job is started again)
    leaving = {m.name for m in MOVES.values() for s in m.to if s in TERMINAL_STATUSES}
    assert leaving == {"start"}
    # every move a runner makes under its lease starts from a status it holds
    for name in ("settle", "graceful_stop", "yield", "reap", "finish"):
        assert set(MOVES[name].to) <= set(HELD_STATUSES), name


def test_every_tone_has_a_chip_colour_in_the_console() -> None:
    """A status chip is coloured by its tone: a new status with a known tone needs no CSS."""
    css = (Path(api_console.__file__).parent / "static" / "console.css").read_text()
    assert {s.tone for s in STATUSES} <= set(re.findall(r"\.chip-([a-z]+)", css))
