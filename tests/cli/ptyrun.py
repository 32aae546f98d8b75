"""Run a command under a real pseudo-terminal and watch its output as it arrives.

`PtyProcess.expect(text)` blocks until `text` has appeared on the terminal (an event, not a
sleep); `finish()` reads to EOF and returns the exit status. The terminal is 200 columns wide so
Rich does not wrap lines, and colour stays on because stdout *is* a terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


class PtyProcess:
    def __init__(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        env = {k: v for k, v in env.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
        )
        os.close(slave)
        self.master = master
        self.raw = b""

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace")

    def _read(self, timeout: float) -> bool:
        """Read what is there within `timeout`; False at EOF (the child closed the terminal)."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every slave descriptor is closed
            return False
        if not chunk:
            return False
        self.raw += chunk
        return True

    def expect(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in strip_ansi(self.text):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} did not appear; output so far:\n{self.text}")
            if not self._read(0.5):
                raise EOFError(f"exited before {text!r}; output:\n{self.text}")

    def finish(self, timeout: float = 120.0) -> int:
        deadline = time.monotonic() + timeout
        while self._read(0.5):
            if time.monotonic() > deadline:
                self.proc.kill()
                raise TimeoutError(f"still running; output so far:\n{self.text}")
        os.close(self.master)
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
