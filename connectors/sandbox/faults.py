"""Faults an emulator injects, switchable at runtime from tests (thread-safe).

Request-level faults are applied by the `Emulator` pipeline before routing:

* `throttle_every(n, retry_after)`   every n-th request answers 429 with `Retry-After`
* `throttle_for(seconds)`            every request answers 429 until the span ends
* `error_burst(status, count, after)` the `count` requests after the next `after` answer `status`
* `latency_ms`                       added to every request (server-side sleep)

Page-level faults are pulled by the search handlers for a 1-based page number (each emulator
documents how it numbers pages) and fire `times` times (None = forever):

* `malformed_page(page)`   the body is cut-off JSON (status 200)
* `truncate_page(page, keep)` only `keep` records although the totals promise more
* `empty_page(page)`       no records mid-stream
* `huge_page(page, size)`  the page's records plus `size` bytes of padding (the generic
                           emulator: a provider that answers more than a worker should read)

`expire_tokens()` bumps `token_epoch`: every token issued before is rejected as expired
(ZoomInfo JWTs, LinkedIn access tokens). For static keys (Apollo, generic) use
`error_burst(401, n)`: each emulator answers an injected status in its own error shape.
`injected` counts what fired, by kind.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Literal, Protocol

PageFaultKind = Literal["malformed", "truncate", "empty", "huge"]


class _Clock(Protocol):
    def now(self) -> float: ...


@dataclass
class PageFault:
    kind: PageFaultKind
    #: records kept (`truncate`), padding bytes (`huge`)
    keep: int = 0
    times: int | None = 1


@dataclass
class _Burst:
    status: int
    skip: int
    count: int


class Faults:
    def __init__(self, clock: _Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.latency_ms = 0.0
        self.token_epoch = 0
        self.injected: Counter[str] = Counter()
        self._every = 0
        self._every_retry_after = 1.0
        self._seen = 0
        self._throttle_until = 0.0
        self._throttle_retry_after: float | None = None
        self._bursts: list[_Burst] = []
        self._pages: dict[int, PageFault] = {}

    # -- switches -------------------------------------------------------------------------
    def throttle_every(self, n: int, retry_after: float = 1.0) -> None:
        """Every n-th request from now on answers 429 (0 turns it off)."""
        with self._lock:
            self._every, self._every_retry_after, self._seen = n, retry_after, 0

    def throttle_for(self, seconds: float, retry_after: float | None = None) -> None:
        """Answer 429 to everything for `seconds`; Retry-After defaults to the time left."""
        with self._lock:
            self._throttle_until = self._clock.now() + seconds
            self._throttle_retry_after = retry_after

    def error_burst(self, status: int = 503, count: int = 3, *, after: int = 0) -> None:
        """The `count` requests following the next `after` ones answer `status`."""
        with self._lock:
            self._bursts.append(_Burst(status, after, count))

    def malformed_page(self, page: int, *, times: int | None = 1) -> None:
        with self._lock:
            self._pages[page] = PageFault("malformed", times=times)

    def truncate_page(self, page: int, keep: int, *, times: int | None = 1) -> None:
        with self._lock:
            self._pages[page] = PageFault("truncate", keep=keep, times=times)

    def empty_page(self, page: int, *, times: int | None = 1) -> None:
        with self._lock:
            self._pages[page] = PageFault("empty", times=times)

    def huge_page(self, page: int, size: int, *, times: int | None = 1) -> None:
        with self._lock:
            self._pages[page] = PageFault("huge", keep=size, times=times)

    def expire_tokens(self) -> None:
        with self._lock:
            self.token_epoch += 1
            self.injected["expire_tokens"] += 1

    def clear(self) -> None:
        """Switch every fault off (counters and the token epoch stay)."""
        with self._lock:
            self.latency_ms = 0.0
            self._every = 0
            self._throttle_until = 0.0
            self._bursts.clear()
            self._pages.clear()

    # -- used by the emulators ------------------------------------------------------------
    def take_request_fault(self, number: int) -> tuple[str, float] | None:
        """("throttle", retry_after) or ("error", status) for this request, else None."""
        with self._lock:
            now = self._clock.now()
            if now < self._throttle_until:
                self.injected["throttle"] += 1
                left = self._throttle_until - now
                ra = self._throttle_retry_after
                return "throttle", ra if ra is not None else left
            if self._every:
                self._seen += 1
                if self._seen % self._every == 0:
                    self.injected["throttle"] += 1
                    return "throttle", self._every_retry_after
            if self._bursts:
                burst = self._bursts[0]
                if burst.skip > 0:
                    burst.skip -= 1
                    return None
                burst.count -= 1
                if burst.count <= 0:
                    self._bursts.pop(0)
                self.injected[f"error_{burst.status}"] += 1
                return "error", float(burst.status)
        return None

    def take_page_fault(self, page: int) -> PageFault | None:
        with self._lock:
            fault = self._pages.get(page)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._pages[page]
            self.injected[fault.kind] += 1
            return PageFault(fault.kind, fault.keep, None)
