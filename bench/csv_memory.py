"""Benchmark: stream a multi-GB CSV through `CsvConnector.pages` and watch rows/s and memory.

The CSV connector promises constant memory on files of any size and a parse + normalise rate
of 150k+ rows/s on one core. This script makes a realistic file (quoted commas, multi-line
cells, accents, `n/a` emails kept by their LinkedIn URL, a few rejectable rows), reads it the way
a job does (pages dropped after use, as the runner commits them), and samples the process RSS
while it runs.

    python bench/csv_memory.py --gb 0.5
    python bench/csv_memory.py --gb 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from connectors.kit.testing import LocalRunContext
from connectors.providers.csv.connector import CsvConfig, CsvConnector, CsvParams

HEADER = (
    "First Name,Last Name,Email,Company,Website,Industry,Title,LinkedIn URL,City,State,"
    "Country,# Employees\r\n"
)
FIRST = (
    "Olivia",
    "Noah",
    "Aisha",
    "Leo",
    "Fatima",
    "Rafael",
    "Ingrid",
    "Tomás",
    "Sophia",
    "Dmitri",
)
LAST = ("Chen", "Haddad", "Okafor", "Schmidt", "Moreau", "Novak", "Patel", "Fernández", "Kowalczyk")
COMPANIES = ("Contoso", "Fabrikam", "Northwind", "Proseware", "Tailspin", "Woodgrove")
TITLES = ("Founder", "CTO", "Head of Sales", "Growth Lead", "Operations Manager", "VP of Sales")
PLACES = (("Austin", "TX", "United States"), ("Berlin", "", "Germany"), ("Kraków", "", "Poland"))


def row(i: int) -> str:
    """Row `i` of the benchmark file; about 1 in 50 rows is quoted, 1 in 500 is rejected."""
    first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
    company = COMPANIES[i % len(COMPANIES)]
    domain = company.lower() + ".example"
    city, state, country = PLACES[i % len(PLACES)]
    slug = f"{first}-{last}-{i}".lower()
    email = f"{first}.{last}{i}@{domain}".lower()
    title = TITLES[i % len(TITLES)]
    name = company
    if i % 500 == 7:
        email, slug = "not-an-email", ""  # rejected: no identity
    elif i % 200 == 3:
        email = "n/a"  # kept on the LinkedIn URL
    if i % 50 == 1:
        name = f'"{company}, Ltd"'
    if i % 97 == 5:
        title = f'"{title}\r\nEMEA ""North"""'
    linkedin = f"https://www.linkedin.com/in/{slug}" if slug else ""
    return (
        f"{first},{last},{email},{name},https://{domain},Software,{title},{linkedin},"
        f"{city},{state},{country},51-200\r\n"
    )


def generate(path: Path, size_bytes: int) -> int:
    """Write rows until the file reaches `size_bytes`; return the number of data rows."""
    written = 0
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        while written < size_bytes:
            batch = "".join(row(i) for i in range(count, count + 20_000))
            out.write(batch)
            written += len(batch.encode("utf-8"))
            count += 20_000
    return count


class RssSampler(threading.Thread):
    """Samples this process's resident set size every `interval` seconds; keeps the peak."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self._process = psutil.Process()
        self._interval = interval
        self._done = threading.Event()
        self.peak = self._process.memory_info().rss
        self.samples = 0

    def run(self) -> None:
        while not self._done.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)
            self.samples += 1

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def measure(path: Path, page_size: int) -> dict[str, Any]:
    ctx = LocalRunContext(uploads={"bench": path})
    connector = CsvConnector()
    baseline = psutil.Process().memory_info().rss
    sampler = RssSampler()
    sampler.start()
    leads = rejected = pages = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    for page in connector.pages(
        CsvConfig(), CsvParams(file_id="bench", page_size=page_size), None, ctx
    ):
        leads += len(page.records)
        rejected += len(page.errors)
        pages += 1
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    peak = sampler.stop()
    size = path.stat().st_size
    rows = leads + rejected
    return {
        "file_bytes": size,
        "rows": rows,
        "leads": leads,
        "rejected": rejected,
        "pages": pages,
        "page_size": page_size,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "rows_per_s": round(rows / seconds),
        "rows_per_cpu_s": round(rows / cpu_seconds),
        "mb_per_s": round(size / seconds / 1e6, 1),
        "rss_baseline_mb": round(baseline / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "rss_growth_mb": round((peak - baseline) / 2**20, 1),
        "rss_samples": sampler.samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="size of the generated file")
    parser.add_argument("--page-size", type=int, default=5000)
    parser.add_argument("--path", type=Path, help="read this CSV instead of generating one")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    generated: Path | None = None
    path = args.path
    if path is None:
        fd, name = tempfile.mkstemp(prefix="dashin-bench-", suffix=".csv")
        os.close(fd)
        generated = path = Path(name)
        started = time.perf_counter()
        generate(path, int(args.gb * 1e9))
        if not args.json:
            print(f"generated {path} in {time.perf_counter() - started:.1f}s")
    try:
        result = measure(path, args.page_size)
    finally:
        if generated is not None and not args.keep:
            generated.unlink()
    if args.json:
        print(json.dumps(result))
        return
    width = max(len(key) for key in result)
    print(f"{'metric':<{width}}  value")
    print(f"{'-' * width}  {'-' * 14}")
    for key, value in result.items():
        print(
            f"{key:<{width}}  {value:>14,}"
            if isinstance(value, int)
            else f"{key:<{width}}  {value:>14}"
        )


if __name__ == "__main__":
    main()
