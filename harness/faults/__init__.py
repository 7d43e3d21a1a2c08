"""Faults: what a scenario does to the driver, as one small protocol.

A :class:`Fault` is applied, may be lifted, and says what it is. Scenarios inject them
through ``ctx.inject(fault)`` (``with ctx.inject(fault):`` lifts it on leaving), which records
the fault and its lifting on the guest's clock: the throughput and stall judges read those
records, so no scenario writes them itself. Implementations are grouped by mechanism:
:mod:`harness.faults.host` acts on the machine from outside (QMP, QEMU's process), a target
without QMP lacks them; :mod:`harness.faults.guest` works through the guest's own sysfs and
PCI configuration space, and :mod:`harness.faults.debugfs` through the guest kernel's fault
injection, so they run on a physical machine too.
"""

from __future__ import annotations

import abc
from types import TracebackType

from harness.errors import HarnessError


class FaultRefused(HarnessError):
    """The target refused the fault (its command failed): on a healthy driver the harness's
    faults are accepted, so this is the driver's answer, not the harness's trouble."""


class FaultStuck(HarnessError):
    """The fault never completed (the guest never let a removed device go)."""


class Fault(abc.ABC):
    """A fault that can be applied, perhaps lifted, and described.

    ``applied_at``: when it took effect on the guest's clock, where the fault measured it
    itself (a guest command stamps its own start); else the injector's estimate stands.
    ``silences``: the controller the fault leaves unable to answer (no write is expected
    until its driver has recovered it), ``silenced_at`` when, if later than applied.
    ``stops_clock``: the guest's clock stands still while the fault holds (measure it again
    once lifted). ``asleep``: a span (host wall clock) within which the whole machine
    certainly slept, set by a fault that suspends it: no driver ran then, so no bound on a
    reset or on writes counts it.
    """

    side = "host"  # "host": needs the machine's controls (QMP); "guest": only a shell there
    applied_at: float | None = None
    silences: str | None = None
    silenced_at: float | None = None
    stops_clock = False
    asleep: tuple[float, float] | None = None

    @abc.abstractmethod
    def apply(self) -> None:
        """Inflict the fault; raises :class:`FaultRefused` if the target refused it."""

    def lift(self) -> None:  # noqa: B027 - optional: a one-shot fault has nothing to lift
        """Undo it; faults the driver must recover from by itself have nothing to lift."""

    @abc.abstractmethod
    def describe(self) -> str:
        """What the fault is, for the timeline and the progress line."""

    def __enter__(self) -> Fault:  # outside a scenario: apply and lift as a context manager
        self.apply()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.lift()
