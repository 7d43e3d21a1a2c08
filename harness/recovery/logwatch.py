"""The guest kernel's log around recoveries: where each recovery left it, and whether any
trouble (a timeout, an abort, a reset or removal nobody asked for) came after the last one.
Reads the log through the functions it is given; knows nothing of the guest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.reading import kmsg
from harness.reading.kmsg import Instability, Requeue


@dataclass
class KernelLogWatch:
    read_log: Callable[[], str]  # the whole kernel log (dmesg)
    read_last_line: Callable[[], str]  # its latest line
    read_requeues: Callable[[], Sequence[Requeue]]  # what resets put back (the trace)
    stable_from: float | None = None  # kernel log time of the latest recovery
    previous_recovery: float = 0.0  # kernel log time of the recovery before it (0: boot)
    marks: list[float] = field(default_factory=list)  # of every recovery, in order

    def mark(self) -> float:
        """The time stamp of the latest log line: a place to read on from."""
        return kmsg.last_stamp(self.read_last_line())

    def since(self, mark: float) -> list[str]:
        """Log lines stamped after ``mark``."""
        return kmsg.lines_after(self.read_log(), mark)

    def recovered(self, at: float | None = None) -> None:
        """A recovery now (``at``: then, on the kernel log's clock, where the caller knows
        it without reading the log): from here on the log must show no further trouble."""
        self.previous_recovery = self.stable_from or 0.0
        self.stable_from = self.mark() if at is None else at
        self.marks.append(self.stable_from)

    def instability(self, since: float | None = None) -> Instability | None:
        """Trouble after the last recovery (None before any, or if it held); ``since`` (a
        :meth:`mark`): after that instead, for a stretch of faults none of which logs trouble
        of its own (a soak's)."""
        if since is not None:
            found = kmsg.instability(self.read_log(), since, since)
            if found is None:
                return None
            # what the last reset before the trouble put back: between the two recoveries
            # before it
            began = kmsg.stamp(found.trouble[0]) or since
            before = [since, *(m for m in self.marks if since < m < began)]
            previous = before[-2] if len(before) > 1 else since
            return Instability(found.trouble, tuple(r for r in self.read_requeues()
                                                    if previous < r.at < began))
        if self.stable_from is None:
            return None
        return kmsg.instability(self.read_log(), self.previous_recovery, self.stable_from,
                                self.read_requeues)

    def requeued_by_last_reset(self) -> list[Requeue]:
        """What was put back between the recovery before the last one and the last one."""
        return [r for r in self.read_requeues()
                if self.previous_recovery < r.at <= (self.stable_from or 0.0)]

    def requeued_by_recent_resets(self) -> list[Requeue]:
        """What the reset of the last recovery and any reset since put back: a hang after a
        recovery may be the requests either requeued and then lost."""
        return [r for r in self.read_requeues() if r.at > self.previous_recovery]

    def requeued_since_recovery(self) -> list[Requeue]:
        """What resets put back since the last recovery: a reset that waits for requeued
        requests it lost never goes live."""
        return [r for r in self.read_requeues() if r.at > (self.stable_from or 0.0)]

    def reset_logged(self, since: float) -> bool:
        """Whether the driver logged a reset (or timeouts) after ``since``: aborts alone are
        not its reaction to a silent device."""
        return any(kmsg.is_recovery_trouble(ln) and "abort" not in ln.lower()
                   for ln in self.since(since))
