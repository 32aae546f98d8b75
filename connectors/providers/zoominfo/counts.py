"""Reading the two count fields of a ZoomInfo `/search/contact` answer.

Why a module of its own: the names invite the wrong reading. ZoomInfo's documented example is
`{"maxResults": 30579, "totalResults": 10, "currentPage": 1, "data": [10 contacts]}`, so
`maxResults` is the number of matches and `totalResults` the number of records on this page.
Read the other way round, an 800-contact search looks like 100 matches and stops after one page.
Documentation can be read either way and clients in the wild do both, so both readings are
accepted: the one that agrees with the page (how many records it holds, whether it is short) is
taken. When neither does, the pages are trusted and the caller is told, to warn once.

The count decides only whether a search must be partitioned and how a short page is judged;
paging itself ends on a short or empty page or at the 1,000-record window
(`connectors.kit.partition`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Reading = Literal["documented", "swapped", "pages"]


@dataclass(frozen=True, slots=True)
class Counts:
    """What one search page says about its search: `matches`, and which reading gave it.

    `reading` is `documented` (`maxResults` = matches, `totalResults` = records on the page),
    `swapped` (the other way round; `maxResults` may also echo the page size asked for), or
    `pages` when neither fits the page: then `matches` is the most any source claims, so a short
    page is asked for again before it is believed.
    """

    matches: int
    reading: Reading
    max_results: int | None
    total_results: int | None

    @property
    def agrees(self) -> bool:
        return self.reading != "pages"


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def read_counts(body: dict[str, Any], records: int, *, page: int, rpp: int) -> Counts:
    """The match count of a search answer holding `records` records on 1-based `page` of `rpp`.

    A reading fits when its page count is the number of records on the page and its match count
    is possible given the pages: exactly the records seen so far on a short page (the last
    one), at least that many on a full page.
    """
    most, total = _count(body.get("maxResults")), _count(body.get("totalResults"))
    seen = (page - 1) * rpp + records
    short = records < rpp

    def possible(matches: int) -> bool:
        return matches == seen if short else matches >= seen

    fits: list[tuple[int, Reading]] = []
    if most is not None and total == records and possible(most):
        fits.append((most, "documented"))
    if total is not None and most in (records, rpp) and possible(total):
        fits.append((total, "swapped"))
    if fits:
        matches, reading = max(fits)
        return Counts(matches, reading, most, total)
    claimed = [c for c in (most, total) if c is not None]
    return Counts(max([seen, *claimed]), "pages", most, total)
