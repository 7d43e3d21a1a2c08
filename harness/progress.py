"""Progress for long steps: one line per step with the time it took, on stderr."""

from __future__ import annotations

import os
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


# What a timeline event says a scenario is doing now (see harness.reading.timeline).
_PHASES = {"started": "scenario running", "load_started": "load running",
           "fault": "injecting", "recovered": "recovered",
           "throughput": "watching throughput", "load_finished": "verifying",
           "verified": "verified", "settled": "checking"}


class RunProgress:
    """Where a campaign of iterations is: which one of how many, doing what, for how long.

    On a terminal one status line is rewritten in place as the scenario's phase changes; in a
    CI log (not a TTY) nothing is printed between iterations, the caller's one line per
    iteration is the progress.
    """

    def __init__(self, label: str, total: int | None, stream: TextIO | None = None,
                 live: bool | None = None) -> None:
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.live = (self.stream.isatty() and os.environ.get("TERM") != "dumb"
                     if live is None else live)
        self._t0 = time.monotonic()
        self._done = 0
        self._current = ""
        self._width = 0

    def begin(self, seed: int) -> None:
        self._current = f"seed {seed}"
        self.phase("booting")

    def phase(self, what: str) -> None:
        if not self.live:
            return
        n = f"{self._done + 1}/{self.total}" if self.total else f"{self._done + 1}"
        line = (f"[{self.label} {n}, {_clock(time.monotonic() - self._t0)}"
                f"{self._eta()}] {self._current}: {what}")[:160]
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def event(self, kind: str, detail: str) -> None:
        """A timeline event of the running iteration (the hook of Context.on_event)."""
        if (what := _PHASES.get(kind)) is not None:
            self.phase(f"{what} {detail}".strip() if kind == "fault" else what)

    def end(self) -> None:
        """The iteration is over: clear the status line before the caller prints its own."""
        self._done += 1
        self.clear()

    def clear(self) -> None:
        """Clear the status line, for a line of the caller's own."""
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _eta(self) -> str:
        if not self.total or not self._done:
            return ""
        left = (time.monotonic() - self._t0) / self._done * (self.total - self._done)
        return f", ~{_clock(left)} left"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
