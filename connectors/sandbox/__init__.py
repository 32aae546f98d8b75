"""Provider emulators: real HTTP servers on 127.0.0.1 that follow the documented API shapes.

Tests (`tests/emulators.py` fixtures), `dashin up --demo` and `python -m connectors.sandbox`
start them. Each emulator is an `Emulator` (see `server`) with `start()` / `stop()` / `with`,
`.url`, `.faults` (runtime fault switches), `.clock` (advance instead of sleeping), rate-limit
`.windows` with `.violations`, and `.stats` (request counters and log). People come from a
deterministic, lazily generated `Dataset`.
"""

from __future__ import annotations

from connectors.sandbox.apollo import ApolloEmulator
from connectors.sandbox.dataset import Dataset, Person
from connectors.sandbox.faults import Faults
from connectors.sandbox.generic import GenericEmulator
from connectors.sandbox.linkedin import LinkedInEmulator
from connectors.sandbox.server import Emulator
from connectors.sandbox.zoominfo import ZoomInfoEmulator

EMULATORS: dict[str, type[Emulator]] = {
    "apollo": ApolloEmulator,
    "zoominfo": ZoomInfoEmulator,
    "linkedin": LinkedInEmulator,
    "generic": GenericEmulator,
}

__all__ = [
    "EMULATORS",
    "ApolloEmulator",
    "Dataset",
    "Emulator",
    "Faults",
    "Person",
    "ZoomInfoEmulator",
]
