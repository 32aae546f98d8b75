"""Run emulators by hand: `python -m connectors.sandbox apollo --port 8101 --people 120000`.

`python -m connectors.sandbox all --port 8101` starts all four on consecutive ports (port 0:
free ports) and prints their URLs and test credentials; Ctrl-C stops them.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Any

from connectors.sandbox.apollo import ApolloEmulator
from connectors.sandbox.generic import GenericEmulator
from connectors.sandbox.linkedin import LinkedInEmulator
from connectors.sandbox.server import Emulator, parse_rate
from connectors.sandbox.zoominfo import ZoomInfoEmulator

NAMES = ("apollo", "zoominfo", "linkedin", "generic")
CREDENTIALS = {
    "apollo": "header x-api-key: apollo-test-key (non-master: apollo-non-master-key)",
    "zoominfo": "POST /authenticate {username: zoominfo-user, password: zoominfo-pass}",
    "linkedin": "Authorization: Bearer linkedin-test-token; owner urn:li:sponsoredAccount:123; "
    "refresh: linkedin-refresh-token, client linkedin-client-id / linkedin-client-secret",
    "generic": "Authorization: Bearer generic-test-token; GET /v1/contacts",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m connectors.sandbox", description=__doc__)
    parser.add_argument("emulator", choices=(*NAMES, "all"))
    parser.add_argument("--port", type=int, default=0, help="port (all: the first of four)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--people", type=int, default=120_000, help="Apollo / ZoomInfo size")
    parser.add_argument("--leads", type=int, default=1000, help="LinkedIn lead count")
    parser.add_argument("--forms", type=int, default=1, help="LinkedIn lead forms")
    parser.add_argument(
        "--repeats", type=int, default=0, help="LinkedIn responses that repeat an earlier person"
    )
    parser.add_argument("--records", type=int, default=1000, help="generic API record count")
    parser.add_argument(
        "--pagination", default="page", choices=("page", "offset", "cursor", "link")
    )
    parser.add_argument(
        "--auth",
        default="bearer",
        choices=("none", "bearer", "api_key_header", "api_key_query", "basic"),
    )
    parser.add_argument("--rate-limit", type=parse_rate, default=None, help="N/period, 100/min")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="ZoomInfo JWT seconds")
    return parser


def build(name: str, args: argparse.Namespace, port: int) -> Emulator:
    common: dict[str, Any] = {
        "port": port,
        "seed": args.seed,
        "latency_ms": args.latency_ms,
        "rate_limit": args.rate_limit,
    }
    if name == "apollo":
        return ApolloEmulator(people=args.people, **common)
    if name == "zoominfo":
        return ZoomInfoEmulator(people=args.people, token_ttl_s=args.token_ttl, **common)
    if name == "linkedin":
        return LinkedInEmulator(leads=args.leads, forms=args.forms, repeats=args.repeats, **common)
    return GenericEmulator(
        records=args.records, pagination=args.pagination, auth=args.auth, **common
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = NAMES if args.emulator == "all" else (args.emulator,)
    emulators: list[Emulator] = []
    try:
        for k, name in enumerate(names):
            port = args.port + k if args.port else 0
            emulators.append(build(name, args, port).start())
            print(f"{name:9} {emulators[-1].url}  {CREDENTIALS[name]}", flush=True)
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    finally:
        for emu in emulators:
            emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
