"""How much host CPU the VM got, second by second: evidence for the throughput criterion.

On a shared host the hypervisor steals CPU in bursts, and under TCG a guest's throughput falls
with it; a verdict on the driver's throughput has to know when that happened (see
:mod:`harness.throughput`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of process ``pid`` so far (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def host_cpu_times(stat: str | None = None) -> tuple[int, int]:
    """(steal, total) clock ticks of all the host's CPUs so far, from ``/proc/stat``.

    Steal is time the hypervisor ran someone else while this machine's CPU wanted to run:
    on a shared cloud host it comes in bursts, and every figure measured meanwhile is slower.
    """
    text = Path("/proc/stat").read_text() if stat is None else stat
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(x) for x in fields[1:9]]  # user .. steal; guest time is in user
            return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)
    raise ValueError("no aggregate cpu line in /proc/stat")


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the host's CPU time stolen between two :func:`host_cpu_times` readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


class CpuSampler:
    """Samples ``read()`` (CPU seconds so far of whatever runs the VM now, None when nothing
    does) every ``period`` seconds, stamped with ``clock()``. The total is kept cumulative
    across restarts of the process (a power cut starts a new QEMU)."""

    def __init__(self, read: Callable[[], float | None], clock: Callable[[], float],
                 period: float = 0.25) -> None:
        self.read, self.clock, self.period = read, clock, period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="cpu-sampler")
        self._lock = threading.Lock()
        self._base = 0.0  # CPU of earlier processes
        self._last = 0.0

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def rewind(self, to: float) -> None:
        """Forget samples stamped after ``to``: the clock they were stamped with ran on while
        the guest's stood still (a stopped VM), so that time does not exist for the guest."""
        with self._lock:
            self.samples = [s for s in self.samples if s[0] <= to]

    def snapshot(self) -> list[tuple[float, float]]:
        with self._lock:
            return list(self.samples)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self.read()
            if value is not None:
                if value < self._last:  # a new process
                    self._base += self._last
                self._last = value
                with self._lock:
                    at = self.clock()
                    if not self.samples or at > self.samples[-1][0]:
                        self.samples.append((at, self._base + value))
            self._stop.wait(self.period)
