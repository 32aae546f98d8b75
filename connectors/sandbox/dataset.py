"""A deterministic, lazily generated population of people for the provider emulators.

Person `i` is a pure function of `(seed, i)`. Its filterable attributes are residues of `i`
modulo three coprime numbers, so a filter is a set of allowed residues per modulus and the people
matching a conjunction of filters form an arithmetic index set (Chinese remainder theorem):

* company   = companies[(i + a) % 499]   (name, domain, industry, employee count, HQ location)
* title     = TITLES[(i + b) % 41]       (title, Apollo seniority, ZoomInfo management level)
* location  = LOCATIONS[(i + c) % 53]    (city, state, country)

Names, phone and update time come from a cheap integer hash of `(seed, i)` and are not
filterable. A `Selection` answers `len()` and "the j-th match" in O(1) after a one-off set-up
proportional to the number of allowed residue combinations, so paging through 120,000 matches
never materialises more than one page of people.

Employee counts follow Apollo's standard ranges with a deliberate skew: about 45 % of people
work at companies of 51-100 employees, so a search over 120,000 people needs splitting by
headcount range *and then* by location to keep every partition under Apollo's 50,000 cap.
"""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from connectors.sandbox import _tables

COMPANY_MOD = 499
TITLE_MOD = 41
LOCATION_MOD = 53
#: seconds since the epoch of the newest `updated_at`; people are spread over the year before
EPOCH_NOW = 1_767_225_600  # 2026-01-01T00:00:00Z

Location = _tables.Location
Title = _tables.Title
SIZE_RANGES = _tables.SIZE_RANGES
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Company:
    index: int
    name: str
    domain: str
    industry: str
    employees: int
    size_range: tuple[int, int | None]
    hq: Location


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    first_name: str
    last_name: str
    title: Title
    company: Company
    location: Location
    phone: str
    updated_at: int  # epoch seconds

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def email(self) -> str:
        local = f"{self.first_name}.{self.last_name}.{to_base36(self.index)}".lower()
        return f"{local}@{self.company.domain}"

    @property
    def linkedin_url(self) -> str:
        slug = f"{self.first_name}-{self.last_name}-{self.index:x}".lower()
        return f"https://www.linkedin.com/in/{slug}"


def to_base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def index_from_email(email: str) -> int | None:
    """The person index encoded in an email this dataset generated, else None."""
    local = email.partition("@")[0]
    tail = local.rpartition(".")[2]
    try:
        return int(tail, 36) if tail else None
    except ValueError:
        return None


def index_from_linkedin(url: str) -> int | None:
    tail = url.rstrip("/").rpartition("-")[2]
    try:
        return int(tail, 16) if tail else None
    except ValueError:
        return None


class Selection:
    """The ordered indices `i < size` whose residues are allowed; `size` may grow later."""

    def __init__(self, dataset: Dataset, period: int, residues: Sequence[int]) -> None:
        self._dataset = dataset
        self._period = period
        self._residues = residues  # sorted, all < period

    def __len__(self) -> int:
        n = self._dataset.size
        per = len(self._residues)
        return (n // self._period) * per + bisect.bisect_left(self._residues, n % self._period)

    def __getitem__(self, j: int) -> int:
        per = len(self._residues)
        return (j // per) * self._period + self._residues[j % per]

    def indices(self, start: int, stop: int) -> list[int]:
        stop = min(stop, len(self))
        return [self[j] for j in range(start, stop)] if start < stop else []


class _All(Selection):
    def __getitem__(self, j: int) -> int:
        return j


def _crt_residues(constraints: list[tuple[int, list[int]]]) -> tuple[int, list[int]]:
    """All x mod prod(p) with x % p in allowed, for pairwise coprime p; sorted."""
    period, residues = 1, [0]
    for p, allowed in constraints:
        inv = pow(period, -1, p)
        residues = [r + period * (((a - r) * inv) % p) for r in residues for a in allowed]
        period *= p
    residues.sort()
    return period, residues


class Dataset:
    """`size` people for `seed`. Thread-safe: selections are cached under a lock."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seed = seed
        rng = random.Random(seed)
        self._offsets = (rng.randrange(COMPANY_MOD), rng.randrange(TITLE_MOD))
        self._loc_offset = rng.randrange(LOCATION_MOD)
        self._hash_key = rng.getrandbits(32) | 1
        self.companies: tuple[Company, ...] = _make_companies(rng)
        self._cache: dict[tuple[object, ...], Selection] = {}
        self._lock = threading.Lock()

    # -- people ---------------------------------------------------------------------------
    def company_of(self, i: int) -> Company:
        return self.companies[(i + self._offsets[0]) % COMPANY_MOD]

    def person(self, i: int) -> Person:
        h = ((i + 1) * 0x9E3779B1 ^ self._hash_key) * 0x85EBCA6B & 0xFFFFFFFF
        first = _tables.FIRST_NAMES[h % len(_tables.FIRST_NAMES)]
        last = _tables.LAST_NAMES[(h >> 11) % len(_tables.LAST_NAMES)]
        return Person(
            index=i,
            first_name=first,
            last_name=last,
            title=_tables.TITLES[(i + self._offsets[1]) % TITLE_MOD],
            company=self.companies[(i + self._offsets[0]) % COMPANY_MOD],
            location=_tables.LOCATIONS[(i + self._loc_offset) % LOCATION_MOD],
            phone=f"+1 555 {(h >> 7) % 1000:03d} {h % 10000:04d}",
            updated_at=EPOCH_NOW - (h % (365 * 86400)),
        )

    def contains(self, i: int) -> bool:
        return 0 <= i < self.size

    # -- filtering ------------------------------------------------------------------------
    def select(
        self,
        *,
        titles: Iterable[str] = (),
        seniorities: Iterable[str] = (),
        management_levels: Iterable[str] = (),
        departments: Iterable[str] = (),
        locations: Iterable[str] = (),
        countries: Iterable[str] = (),
        states: Iterable[str] = (),
        company_locations: Iterable[str] = (),
        company_names: Iterable[str] = (),
        domains: Iterable[str] = (),
        industries: Iterable[str] = (),
        employee_ranges: Iterable[tuple[int, int | None]] = (),
        keywords: str | None = None,
    ) -> Selection:
        """People matching every given filter; values inside one filter are alternatives."""
        company_sets: list[set[int]] = []
        title_sets: list[set[int]] = []
        location_sets: list[set[int]] = []
        if t := _lower(titles):
            title_sets.append(
                _match(_tables.TITLES, lambda x: any(v in x.title.lower() for v in t))
            )
        if s := _lower(seniorities):
            title_sets.append(_match(_tables.TITLES, lambda x: x.seniority in s))
        if m := _lower(management_levels):
            title_sets.append(_match(_tables.TITLES, lambda x: x.management_level.lower() in m))
        if dep := _lower(departments):
            title_sets.append(_match(_tables.TITLES, lambda x: x.department.lower() in dep))
        for places in (locations, countries, states):  # each narrows; values are alternatives
            if loc := _lower(places):
                location_sets.append(_match(_tables.LOCATIONS, lambda x: x.matches_any(loc)))
        if hq := _lower(company_locations):
            company_sets.append(_match(self.companies, lambda c: c.hq.matches_any(hq)))
        if n := _lower(company_names):
            company_sets.append(
                _match(self.companies, lambda c: any(v in c.name.lower() for v in n))
            )
        if d := {_bare_domain(v) for v in _lower(domains)}:
            company_sets.append(_match(self.companies, lambda c: c.domain in d))
        if ind := _lower(industries):
            company_sets.append(_match(self.companies, lambda c: c.industry.lower() in ind))
        if ranges := list(employee_ranges):
            company_sets.append(
                _match(
                    self.companies,
                    lambda c: any(
                        lo <= c.employees and (hi is None or c.employees <= hi) for lo, hi in ranges
                    ),
                )
            )
        for term in (keywords or "").lower().split():
            self._keyword_term(term, title_sets, company_sets, location_sets)
        return self._selection(company_sets, title_sets, location_sets)

    def _keyword_term(
        self,
        term: str,
        title_sets: list[set[int]],
        company_sets: list[set[int]],
        location_sets: list[set[int]],
    ) -> None:
        """A keyword narrows the first attribute it matches: title, then company, then place."""
        hit = _match(_tables.TITLES, lambda x: term in x.title.lower())
        if hit:
            title_sets.append(hit)
            return
        hit = _match(
            self.companies,
            lambda c: term in c.name.lower() or term in c.industry.lower() or term in c.domain,
        )
        if hit:
            company_sets.append(hit)
            return
        location_sets.append(_match(_tables.LOCATIONS, lambda x: x.matches_any({term})))

    def _selection(
        self,
        company_sets: list[set[int]],
        title_sets: list[set[int]],
        location_sets: list[set[int]],
    ) -> Selection:
        constraints: list[tuple[int, list[int]]] = []
        offsets = (self._offsets[0], self._offsets[1], self._loc_offset)
        for mod, offset, sets in zip(
            (COMPANY_MOD, TITLE_MOD, LOCATION_MOD),
            offsets,
            (company_sets, title_sets, location_sets),
            strict=True,
        ):
            if not sets:
                continue
            allowed = set.intersection(*sets)
            constraints.append((mod, sorted((a - offset) % mod for a in allowed)))
        key = tuple((m, tuple(a)) for m, a in constraints)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                if not constraints:
                    cached = _All(self, 1, [0])
                else:
                    period, residues = _crt_residues(constraints)
                    cached = Selection(self, period, residues) if residues else _Empty(self)
                if len(self._cache) > 4096:
                    self._cache.clear()
                self._cache[key] = cached
            return cached


class _Empty(Selection):
    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset, 1, [])

    def __len__(self) -> int:
        return 0


def _lower(values: Iterable[str]) -> set[str]:
    return {v.strip().lower() for v in values if v and v.strip()}


def _bare_domain(value: str) -> str:
    for prefix in ("https://", "http://", "www."):
        value = value.removeprefix(prefix)
    return value.split("/")[0]


def _match(table: Sequence[_T], predicate: Callable[[_T], bool]) -> set[int]:
    return {k for k, item in enumerate(table) if predicate(item)}


def _make_companies(rng: random.Random) -> tuple[Company, ...]:
    """499 companies; each size range gets a fixed share so the skew is exact for any seed."""
    buckets: list[int] = []
    for k, share in enumerate(_tables.SIZE_SHARES):
        buckets += [k] * round(COMPANY_MOD * share / 100)
    buckets = (buckets + [0] * COMPANY_MOD)[:COMPANY_MOD]
    rng.shuffle(buckets)
    seen: set[str] = set()
    companies = []
    for k in range(COMPANY_MOD):
        base = f"{rng.choice(_tables.COMPANY_WORDS)} {rng.choice(_tables.COMPANY_NOUNS)}"
        candidates = [base] + [f"{base} {sfx}" for sfx in _tables.COMPANY_SUFFIXES]
        name = next((c for c in candidates if c.lower() not in seen), "")
        n = 2
        while not name or name.lower() in seen:
            name, n = f"{base} {n}", n + 1
        seen.add(name.lower())
        lo, hi = SIZE_RANGES[buckets[k]]
        slug = "".join(ch for ch in name.lower() if ch.isalnum())
        companies.append(
            Company(
                index=k,
                name=name,
                domain=f"{slug}.{rng.choice(_tables.TLDS)}",
                industry=rng.choice(_tables.INDUSTRIES),
                employees=rng.randint(lo, hi if hi is not None else 50_000),
                size_range=(lo, hi),
                hq=_tables.LOCATIONS[rng.randrange(LOCATION_MOD)],
            )
        )
    return tuple(companies)
