"""The scheduler process: fires schedules (one leader) and runs the job engine's reaper.

Public surface:
- `run_scheduler(stop_event)`: the `dashin scheduler` process (also `python -m scheduler`).
- `reap_once(engine, settings, enqueue)`: one reaper pass (`dashin reap`), returns a `ReapReport`.
- `Scheduler`: the table mirror with `tick(now)`, for tests and embedding.

See docs/scheduler.md for the semantics (slots, overlap, misfires, jitter, leader election).
"""

from scheduler.loop import Fire, Scheduler, TickReport
from scheduler.reaper import ReapReport, reap_once
from scheduler.service import run_scheduler

__all__ = ["Fire", "ReapReport", "Scheduler", "TickReport", "reap_once", "run_scheduler"]
