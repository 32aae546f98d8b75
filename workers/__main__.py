"""`python -m workers [--queues a,b] [--processes N] [--threads M]` (same as `dashin worker`)."""

from __future__ import annotations

import argparse

from workers.worker import run_worker_pool


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m workers")
    parser.add_argument("--queues", default="", help="comma-separated queues (default: all)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    queues = [q.strip() for q in args.queues.split(",") if q.strip()] or None
    run_worker_pool(queues, args.processes, args.threads)


if __name__ == "__main__":
    main()
