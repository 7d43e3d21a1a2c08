"""How much host CPU the VM got and how fast the host ran, second by second: evidence for
the throughput criterion.

On a shared host the hypervisor steals CPU in bursts, and the host slows down without taking
CPU away; under TCG a guest's throughput falls with either, and a verdict on the driver's
throughput has to know when that happened (see :mod:`harness.reading.throughput`).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
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


def speed_probe() -> float:
    """CPU seconds this thread needs for a fixed piece of work: the host's speed, inversely.

    A shared host slows down without taking CPU time away: a busy neighbour on the same
    physical core or cache, or a lower clock. The VM's process then gets its CPU seconds
    and does less in each (measured here: the same guest load ran at half its IOPS for
    seconds at a time while its CPU share stayed put, and this probe took 1.6 times as long
    meanwhile). About a millisecond of pure interpreter work; thread CPU time, so time spent
    waiting for the GIL or for a CPU does not count.
    """
    started = time.thread_time()
    x = 0
    for i in range(PROBE_LOOPS):
        x += i * i
    return time.thread_time() - started


PROBE_LOOPS = 20000
SPEED_WINDOW = 5  # probes whose median weights each CPU sample (outliers are interruptions)


class CpuSampler:
    """Samples ``read()`` (CPU seconds so far of whatever runs the VM now, None when nothing
    does) every ``period`` seconds, stamped with ``clock()``. The total is kept cumulative
    across restarts of the process (a power cut starts a new QEMU).

    With a ``probe`` (see :func:`speed_probe`) it also keeps the VM's *compute*: the CPU
    seconds weighted by the host's speed when they were used. That, not CPU time alone, is
    what a TCG guest's throughput follows."""

    def __init__(self, read: Callable[[], float | None], clock: Callable[[], float],
                 period: float = 0.1, probe: Callable[[], float] | None = speed_probe) -> None:
        self.read, self.clock, self.period, self.probe = read, clock, period, probe
        self.samples: list[tuple[float, float]] = []
        self.costs: list[tuple[float, float]] = []  # (time, seconds the probe took)
        self._compute: list[tuple[float, float]] = []  # (time, cumulative weighted CPU)
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
            self.costs = [s for s in self.costs if s[0] <= to]
            self._compute = [s for s in self._compute if s[0] <= to]

    def snapshot(self) -> list[tuple[float, float]]:
        with self._lock:
            return list(self.samples)

    def compute(self) -> list[tuple[float, float]]:
        """Cumulative compute samples (see the class): CPU seconds divided by the probe's
        cost, a unit only ratios make sense of; the plain CPU samples without a probe."""
        with self._lock:
            return list(self._compute if self.probe is not None else self.samples)

    def speeds(self) -> list[tuple[float, float]]:
        """(time, the host's speed relative to the run's median) for every probe so far."""
        with self._lock:
            if not self.costs:
                return []
            reference = statistics.median(c for _, c in self.costs)
            return [(t, reference / c) for t, c in self.costs if c > 0]

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self.read()
            if value is not None:
                cost = self.probe() if self.probe is not None else None
                if value < self._last:  # a new process
                    self._base += self._last
                self._last = value
                with self._lock:
                    at = self.clock()
                    if not self.samples or at > self.samples[-1][0]:
                        self._record(at, self._base + value, cost)
            self._stop.wait(self.period)

    def _record(self, at: float, cpu: float, cost: float | None) -> None:
        """Add one sample (the lock held): CPU since the last one, weighted by the median of
        the latest probes' speeds, adds to the compute."""
        previous = self.samples[-1][1] if self.samples else cpu
        self.samples.append((at, cpu))
        if cost is None or cost <= 0:
            return
        self.costs.append((at, cost))
        recent = statistics.median(c for _, c in self.costs[-SPEED_WINDOW:])
        done = self._compute[-1][1] if self._compute else 0.0
        self._compute.append((at, done + (cpu - previous) / recent))
