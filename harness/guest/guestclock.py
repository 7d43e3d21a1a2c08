"""The guest's clock, read on the host: timeline events, fio's logs and the kernel's stamps
all speak guest time, so the host stamps its own acts with this estimate."""

from __future__ import annotations

import time
from collections.abc import Callable

ROUND_TRIPS = 3


class GuestClock:
    """Guest wall-clock time estimated as host time plus an offset, measured from the
    fastest of a few round trips (its midpoint is closest to the guest's reading).

    ``read``: the guest's clock now, one round trip (``echo $EPOCHREALTIME``).
    """

    def __init__(self, read: Callable[[], float],
                 host: Callable[[], float] = time.time) -> None:
        self.read, self.host = read, host
        self.offset = self.measure()

    def measure(self) -> float:
        """Guest clock minus host clock."""
        best: tuple[float, float] | None = None
        for _ in range(ROUND_TRIPS):
            t0 = self.host()
            guest_now = self.read()
            t1 = self.host()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, guest_now - (t0 + t1) / 2)
        assert best is not None
        return best[1]

    def resync(self) -> None:
        """Measure again: the guest's clock stood still while the VM was stopped, or was set
        anew when it started again."""
        self.offset = self.measure()

    def now(self) -> float:
        return self.host() + self.offset
