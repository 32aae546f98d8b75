"""Child processes of `dashin up`: prefixed, coloured output; stopped together on Ctrl-C/SIGTERM.

The first Ctrl-C sends SIGTERM to every child at once and says what each one is finishing (the
worker lets running jobs commit their page and requeues them); each child is reported as it
exits. A second Ctrl-C kills what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from rich.console import Console
from rich.text import Text

COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the stack's children: the local stack is development (readable logs,
    mail logged without SMTP) unless the caller's environment says otherwise; every other way
    of running Dashin is production by default. The local stack also needs no domain proof for
    paid providers: its one operator cannot squat a name, and the demo's Apollo and LinkedIn
    sandboxes (and a newcomer's first real source) would be refused otherwise."""
    return {
        "DASHIN_LOG_FORMAT": "console",
        "DASHIN_ENV": "development",
        "DASHIN_REQUIRE_DOMAIN_PROOF": "false",
        **os.environ,
        **(extra or {}),
    }


class ProcessGroup:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = threading.Event()
        self.kill_now = threading.Event()  # a second Ctrl-C while stopping
        self.waits_for: dict[str, str] = {}
        self._lock = threading.Lock()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        stops: str = "",
    ) -> None:
        """Run `argv` as `name`; `stops` says what it finishes on SIGTERM (shown on Ctrl-C)."""
        self.waits_for[name] = stops
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env(env),
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
            if self.stopping.is_set():
                self.kill_now.set()
            self.stopping.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)

    def wait(self) -> None:
        self.stopping.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to every child at once, then wait for each (SIGKILL after `timeout` or on a
        second Ctrl-C), saying what is awaited and when each one is done."""
        self.stopping.set()
        alive = [(name, proc) for name, proc in self.procs if proc.poll() is None]
        if not alive:
            return
        for _, proc in alive:
            os.killpg(proc.pid, signal.SIGTERM)
        waits = "; ".join(
            f"{name} ({self.waits_for[name]})" if self.waits_for.get(name) else name
            for name, _ in alive
        )
        with self._lock:
            self.console.print(f"[bold]stopping[/]: waiting for {waits}. Ctrl-C again kills them.")
        started = time.monotonic()
        for name, proc in alive:
            if not self._await_exit(proc, started + timeout):
                reason = "killed" if self.kill_now.is_set() else f"not stopped in {timeout:.0f}s"
                with self._lock:
                    self.console.print(f"{name:>9} | {reason}: SIGKILL")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with self._lock:
                elapsed = time.monotonic() - started
                self.console.print(f"{name:>9} | stopped ({elapsed:.1f}s)", style="dim")

    def _await_exit(self, proc: subprocess.Popen[bytes], deadline: float) -> bool:
        """True once `proc` exited; False at the deadline or on a second Ctrl-C."""
        while not self.kill_now.is_set():
            try:
                proc.wait(min(0.1, max(deadline - time.monotonic(), 0.0)))
                return True
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    return False
        return proc.poll() is not None


def dashin_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]
