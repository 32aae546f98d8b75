"""`python -m scheduler`: run the scheduler process until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def main() -> None:
    from scheduler.service import run_scheduler

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run_scheduler(stop)


if __name__ == "__main__":
    main()
