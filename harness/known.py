"""Kernel bugs the suite has found, recorded so that it stays green for the right reason.

A scenario that fails on a stock kernel may have found a real driver bug. Once that is
established (checked on another kernel, evidence kept), the failure is recorded here with
the kernels it affects, what the failure looks like, and the bug's reference. The pytest
suite then expects exactly that failure on those kernels (and still fails on any other);
``repro`` keeps exiting 1 for it, because a bisect must see the bug, and prints the reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.scenario import Failure, FailureKind


def kernel_version(release: str) -> tuple[int, int]:
    """(major, minor) of a ``uname -r`` string such as ``6.1.0-56-amd64``."""
    found = re.match(r"(\d+)\.(\d+)", release)
    if not found:
        raise ValueError(f"not a kernel release: {release!r}")
    return int(found.group(1)), int(found.group(2))


@dataclass(frozen=True)
class KnownFailure:
    scenario: str
    first: str  # first affected kernel, "6.1"
    fixed_in: str | None  # first kernel with the fix, None while unfixed
    kind: FailureKind
    pattern: str  # a regular expression every failure message of the iteration must match
    reference: str  # bug report, mailing-list thread or fixing commit
    evidence: str  # what showed it, and where the console, dmesg and timeline are kept

    def affects(self, release: str) -> bool:
        version = kernel_version(release)
        if version < kernel_version(self.first):
            return False
        return self.fixed_in is None or version < kernel_version(self.fixed_in)

    def explains(self, scenario: str, release: str, failures: Sequence[Failure]) -> bool:
        """True if this record accounts for every failure of an iteration, and nothing else."""
        return (scenario == self.scenario and self.affects(release) and bool(failures)
                and all(f.kind == self.kind and re.search(self.pattern, f.message)
                        for f in failures))

    def describe(self) -> str:
        kernels = f"{self.first}..{self.fixed_in}" if self.fixed_in else f"{self.first} and later"
        return (f"known kernel bug on {kernels}: {self.reference} ({self.kind.value}); "
                f"evidence: {self.evidence}")


# No scenario has failed on a stock Debian kernel so far (6.1: every scenario, see the
# README), so nothing is recorded yet. A record looks like:
#   KnownFailure("reset-storm", first="6.1", fixed_in="6.3", kind=FailureKind.HANG,
#                pattern=r"nvme_reset_work", reference="https://lore.kernel.org/...",
#                evidence="artifacts of seed 42 kept in ...; does not fail on 6.3")
KNOWN: tuple[KnownFailure, ...] = ()


def explain(scenario: str, release: str, failures: Sequence[Failure],
            known: Sequence[KnownFailure] = KNOWN) -> KnownFailure | None:
    """The recorded bug that accounts for these failures, if one does."""
    return next((k for k in known if k.explains(scenario, release, failures)), None)
