"""How busy the guest's CPUs were, by its own accounting, sampled in the guest every second.

The host sees how much CPU the VM got; only the guest knows whether it wanted more. A guest
whose driver stalls waits with requests in flight and its CPUs idle, and so gets little CPU
from the host: that must not pass for a starved VM (see :mod:`harness.reading.throughput`).
"""

from __future__ import annotations

from harness.guest.ssh import Background, Guest
from harness.reading.throughput import GuestBusy

USER_HZ = 100  # the unit of /proc/stat (USER_HZ, 100 on every Linux architecture)


def parse(text: str) -> GuestBusy:
    """The sampler's lines, ``TIME BUSY IDLE`` (ticks since boot), as cumulative seconds."""
    busy, total = [], []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3 or not all(f.replace(".", "", 1).isdigit() for f in fields):
            continue
        at, b, idle = float(fields[0]), int(fields[1]), int(fields[2])
        busy.append((at, b / USER_HZ))
        total.append((at, (b + idle) / USER_HZ))
    return GuestBusy(busy, total)


class GuestCpuMonitor:
    """Samples the guest's /proc/stat once a second: busy (user, nice, system, irq, softirq,
    steal: it ran, or wanted to and the host ran something else) and idle (idle, iowait)
    ticks, stamped with the guest's clock. One guest shell loop of builtins only."""

    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self._bg: Background | None = None
        self._done = ""  # what earlier runs (before a power cut) sampled

    def start(self) -> None:
        self._bg = self.guest.call_background("_cpu_sample_ticks")

    def so_far(self) -> GuestBusy:
        """Every sample up to now (also while it runs)."""
        return parse(self._done + (self._bg.output() if self._bg is not None else ""))

    def stop(self) -> GuestBusy:
        if self._bg is not None:
            self._done += self._bg.kill().stdout
            self._bg = None
        return parse(self._done)
