"""Progress for long steps: one line per step with the time it took, on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints ``[nvmeh] step...`` lines; the previous step's duration closes it."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._started = time.monotonic()
        self._step: tuple[str, float] | None = None

    def step(self, message: str) -> None:
        self.done()
        self._step = (message, time.monotonic())
        self._print(f"{message} ...")

    def info(self, message: str) -> None:
        self._print(message)

    def done(self) -> None:
        if self._step:
            message, t0 = self._step
            self._print(f"{message}: done in {time.monotonic() - t0:.1f}s")
            self._step = None

    def _print(self, line: str) -> None:
        if not self.quiet:
            print(f"[nvmeh {time.monotonic() - self._started:6.1f}s] {line}", file=self.stream,
                  flush=True)


QUIET = Progress(quiet=True)
