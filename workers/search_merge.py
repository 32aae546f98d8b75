"""Merges the lead search index's pending list soon after page commits, off the page path.

Why a thread: a page appends its search entries to the trigram index's pending list and is
searchable at commit (`models.lead_search`); every search then scans that list, so it must not
grow for long. The runner pokes the merger after each committed page that wrote leads; the
merger's own thread merges the list on its own connection, at most once per `interval_s`
(pokes meanwhile coalesce into the next round), so the committing thread never waits for it.
One merger per engine (worker process); merges of several processes are serialised by
PostgreSQL. A failed merge is logged and retried on the next poke: searches stay correct, only
slower, until a merge succeeds.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from models.lead_search import merge_pending
from runtime.logging import get_logger

_log = get_logger(__name__)

#: at most one merge per this many seconds per process: a lead's entries reach the index tree
#: within about this delay after its commit (it is searchable at commit either way)
MERGE_INTERVAL_S = 1.0


class SearchMerger:
    def __init__(self, engine: Engine, interval_s: float = MERGE_INTERVAL_S) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()
        #: merge rounds finished, and pending pages merged by them (for tests and metrics)
        self.rounds = 0
        self.merged_pages = 0

    def poke(self) -> None:
        """Ask for a merge soon; returns at once (starts the thread on first use)."""
        self._wanted.set()
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="search-merge", daemon=True
                    )
                    self._thread.start()

    def wait_rounds(self, rounds: int, timeout: float) -> bool:
        """Block until `rounds` merges have finished (tests wait on this, not on time)."""
        with self._done:
            return self._done.wait_for(lambda: self.rounds >= rounds, timeout)

    def stop(self) -> None:
        self._stop.set()
        self._wanted.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            pages = 0
            try:
                with self.engine.begin() as conn:
                    pages = merge_pending(conn)
            except Exception:  # the next poke tries again; searches stay correct meanwhile
                _log.warning("search.merge_failed", exc_info=True)
            with self._done:
                self.rounds += 1
                self.merged_pages += pages
                self._done.notify_all()
            self._stop.wait(self.interval_s)


_mergers: dict[int, SearchMerger] = {}
_mergers_lock = threading.Lock()


def merger_for(engine: Engine) -> SearchMerger:
    """The process's merger for `engine` (one thread per engine, made on first use)."""
    with _mergers_lock:
        merger = _mergers.get(id(engine))
        if merger is None or merger.engine is not engine:
            merger = _mergers[id(engine)] = SearchMerger(engine)
        return merger
