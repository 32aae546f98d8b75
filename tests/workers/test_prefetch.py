"""The prefetcher: order kept, errors re-raised in the consumer, budget, generator closed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from workers.prefetch import Prefetcher


def test_items_arrive_in_order() -> None:
    pages = Prefetcher(iter(range(5)), budget=2)
    assert next(pages) == 0
    assert list(pages) == [1, 2, 3, 4]


def test_errors_are_raised_in_the_consumer_after_the_good_items() -> None:
    def gen() -> Iterator[int]:
        yield 1
        raise ValueError("provider broke")

    pages = Prefetcher(gen())
    assert next(pages) == 1
    with pytest.raises(ValueError, match="provider broke"):
        next(pages)


def test_the_producer_stops_at_the_budget_and_take_ready_drains_within_it() -> None:
    produced: list[int] = []
    blocked = threading.Event()

    def gen() -> Iterator[int]:
        for i in range(10):
            produced.append(i)
            if i == 3:
                blocked.set()  # items 0..2 fill the budget of 3; item 3 waits for room
            yield i

    pages = Prefetcher(gen(), size=lambda _i: 1, budget=3)
    assert blocked.wait(5)
    assert len(produced) == 4  # 3 buffered + 1 in hand, nothing further
    seen = [next(pages)]
    first_ready = pages.take_ready(budget=1)
    assert first_ready == [1]  # never more than the budget asked for
    seen += first_ready + pages.take_ready(budget=10) + list(pages)
    assert seen == list(range(10))


def test_close_stops_the_producer_and_closes_the_generator() -> None:
    closed = threading.Event()

    def gen() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    pages = Prefetcher(gen(), budget=2)
    assert next(pages) == 0
    pages.close()
    assert closed.wait(5)


def test_a_prefetcher_shortens_the_switch_interval_and_never_lengthens_it() -> None:
    import sys

    from workers.prefetch import SWITCH_INTERVAL_S

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        Prefetcher(iter(())).close()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        sys.setswitchinterval(0.0001)
        Prefetcher(iter(())).close()
        assert sys.getswitchinterval() == pytest.approx(0.0001)
    finally:
        sys.setswitchinterval(before)
