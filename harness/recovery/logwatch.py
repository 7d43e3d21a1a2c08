"""The guest kernel's log around recoveries: where each recovery left it, and whether any
trouble (a timeout, an abort, a reset or removal nobody asked for) came after the last one.
Reads the log through the functions it is given; knows nothing of the guest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.reading import kmsg
from harness.reading.kmsg import Instability, Requeue


@dataclass
class KernelLogWatch:
    read_log: Callable[[], str]  # the whole kernel log (dmesg)
    read_last_line: Callable[[], str]  # its latest line
    read_requeues: Callable[[], Sequence[Requeue]]  # what resets put back (the trace)
    stable_from: float | None = None  # kernel log time of the latest recovery
    previous_recovery: float = 0.0  # kernel log time of the recovery before it (0: boot)

    def mark(self) -> float:
        """The time stamp of the latest log line: a place to read on from."""
        return kmsg.last_stamp(self.read_last_line())

    def since(self, mark: float) -> list[str]:
        """Log lines stamped after ``mark``."""
        return kmsg.lines_after(self.read_log(), mark)

    def recovered(self) -> None:
        """A recovery now: from here on the log must show no further trouble."""
        self.previous_recovery = self.stable_from or 0.0
        self.stable_from = self.mark()

    def instability(self) -> Instability | None:
        """Trouble after the last recovery (None before any, or if it held)."""
        if self.stable_from is None:
            return None
        return kmsg.instability(self.read_log(), self.previous_recovery, self.stable_from,
                                self.read_requeues)

    def requeued_since_recovery(self) -> list[Requeue]:
        """What resets put back since the last recovery: a reset that waits for requeued
        requests it lost never goes live."""
        return [r for r in self.read_requeues() if r.at > (self.stable_from or 0.0)]

    def reset_logged(self, since: float) -> bool:
        """Whether the driver logged a reset (or timeouts) after ``since``: aborts alone are
        not its reaction to a silent device."""
        return any(kmsg.is_recovery_trouble(ln) and "abort" not in ln.lower()
                   for ln in self.since(since))
