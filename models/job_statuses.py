"""The job statuses and their allowed moves (ARCHITECTURE §3), declared once, as data.

Everything else that names statuses derives from `STATUSES` and `MOVES`: the `jobs.status`
CHECK constraint (and the test that reads it back from the database), the compare-and-set of
every move in `models.job_states`, the runner's "may I go on?", the API's `JobStatus` enum,
the console's buttons and the CLI's colours. Adding a status is one entry here plus the
migration that widens the CHECK constraint.

No SQL and no heavy imports here: the CLI reads it to colour its tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

#: how a status looks to people (the CLI and console colour by tone, never by name)
Tone = Literal["idle", "waiting", "active", "pausing", "stopping", "success", "failure"]


@dataclass(frozen=True, slots=True)
class Status:
    name: str
    tone: Tone
    #: no move leads out of it but `start` (a failed job); the run is over
    terminal: bool = False
    #: a runner holds the job under its lease (heartbeats, fenced writes; the reaper watches)
    held: bool = False
    #: the runner should stop after the page in hand and settle the move an operator asked for
    stopping: bool = False
    #: the job has or wants a worker thread (a queue message, or a runner holding it)
    live: bool = False


STATUSES: tuple[Status, ...] = (
    Status("pending", "idle"),
    Status("queued", "waiting", live=True),
    Status("running", "active", held=True, live=True),
    Status("pausing", "pausing", held=True, stopping=True, live=True),
    Status("paused", "pausing"),
    Status("cancelling", "stopping", held=True, stopping=True, live=True),
    Status("completed", "success", terminal=True),
    Status("failed", "failure", terminal=True),
    Status("cancelled", "stopping", terminal=True),
)
BY_NAME: Mapping[str, Status] = {s.name: s for s in STATUSES}

JOB_STATUSES: tuple[str, ...] = tuple(s.name for s in STATUSES)
TERMINAL_STATUSES: tuple[str, ...] = tuple(s.name for s in STATUSES if s.terminal)
LIVE_STATUSES: tuple[str, ...] = tuple(s.name for s in STATUSES if s.live)
#: the statuses a runner holds under its lease: the page fence and the reaper use them
HELD_STATUSES: tuple[str, ...] = tuple(s.name for s in STATUSES if s.held)
STOPPING_STATUSES: tuple[str, ...] = tuple(s.name for s in STATUSES if s.stopping)


@dataclass(frozen=True, slots=True)
class Move:
    """A move: from each status it starts from, the status it leads to."""

    name: str
    to: Mapping[str, str]
    #: a move an operator may ask for (API, CLI, console buttons); the others are the runner's
    #: and the reaper's
    user: bool = False

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.to)


#: a runner hands its job back (worker shutdown, time slice used, or the reaper takes it)
_HAND_BACK = {"running": "queued", "pausing": "paused", "cancelling": "cancelled"}

MOVES: Mapping[str, Move] = {
    m.name: m
    for m in (
        Move("start", {"pending": "queued", "failed": "queued"}, user=True),
        Move("pause", {"queued": "paused", "running": "pausing"}, user=True),
        Move("resume", {"paused": "queued"}, user=True),
        Move(
            "cancel",
            {
                "pending": "cancelled",
                "queued": "cancelled",
                "paused": "cancelled",
                "running": "cancelling",
                "pausing": "cancelling",
            },
            user=True,
        ),
        Move("acquire", {"queued": "running"}),
        Move("poison", {"queued": "failed"}),
        Move("settle", {"pausing": "paused", "cancelling": "cancelled"}),
        Move("park", {"running": "paused"}),
        Move("graceful_stop", _HAND_BACK),
        Move("yield", _HAND_BACK),
        Move("reap", _HAND_BACK),
        # the outcome (models.job_outcome) decides completed or failed; cancelling → cancelled
        Move("finish", {"running": "completed", "pausing": "completed", "cancelling": "cancelled"}),
    )
}
USER_MOVES: tuple[str, ...] = tuple(name for name, m in MOVES.items() if m.user)


def moves_from(status: str) -> list[str]:
    """The user moves a job in `status` allows (the buttons and commands to offer)."""
    return [name for name in USER_MOVES if status in MOVES[name].to]


def _check() -> None:
    """Every move names declared statuses; runs at import, so a typo fails every test."""
    for move in MOVES.values():
        unknown = {*move.to, *move.to.values()} - set(BY_NAME)
        assert not unknown, f"move {move.name} names unknown statuses {unknown}"


_check()
