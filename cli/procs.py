"""Child processes of `dashin up`: prefixed, coloured output; stopped together on Ctrl-C/SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from rich.console import Console
from rich.text import Text

COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red")


class ProcessGroup:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={"DASHIN_LOG_FORMAT": "console", **os.environ, **(env or {})},
            start_new_session=True,
        )
        colour = COLOURS[len(self.procs) % len(COLOURS)]
        self.procs.append((name, proc))
        threading.Thread(target=self._pump, args=(name, colour, proc), daemon=True).start()

    def _pump(self, name: str, colour: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = Text(f"{name:>9} | ", style=colour)
            line.append(raw.decode(errors="replace").rstrip())
            with self._lock:
                self.console.print(line, highlight=False, soft_wrap=True)
        code = proc.wait()
        if not self.stopping.is_set():
            with self._lock:
                self.console.print(Text(f"{name:>9} | exited with {code}", style="bold red"))
            self.stopping.set()

    def install_signal_handlers(self) -> None:
        def _stop(_signum: int, _frame: FrameType | None) -> None:
            self.stopping.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)

    def wait(self) -> None:
        self.stopping.wait()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        for _, proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.console.print(f"{name} did not stop in {timeout:.0f}s: killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def dashin_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]
