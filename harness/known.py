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

from harness.report import Status
from harness.scenario import Failure, FailureKind


def kernel_version(release: str) -> tuple[int, int]:
    """(major, minor) of a ``uname -r`` string such as ``6.1.0-56-amd64``."""
    found = re.match(r"(\d+)\.(\d+)", release)
    if not found:
        raise ValueError(f"not a kernel release: {release!r}")
    return int(found.group(1)), int(found.group(2))


@dataclass(frozen=True)
class KnownFailure:
    scenarios: tuple[str, ...]  # the scenarios it makes fail
    first: str  # first affected kernel, "6.1"
    fixed_in: str | None  # first kernel with the fix, None while unfixed
    kind: FailureKind | tuple[FailureKind, ...]  # what each failure of the iteration may be
    pattern: str  # a regular expression every failure message of the iteration must match
    reference: str  # bug report, mailing-list thread or fixing commit
    evidence: str  # what showed it, and where the console, dmesg and timeline are kept
    # A regular expression one failure's message or evidence must match: what tells this bug
    # apart from others failing the same way (a hang is a hang; where it hangs is the bug).
    signature: str | None = None

    def affects(self, release: str) -> bool:
        version = kernel_version(release)
        if version < kernel_version(self.first):
            return False
        return self.fixed_in is None or version < kernel_version(self.fixed_in)

    @property
    def kinds(self) -> tuple[FailureKind, ...]:
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    def explains(self, scenario: str, release: str, failures: Sequence[Failure]) -> bool:
        """True if this record accounts for every failure of an iteration, and nothing else."""
        return (scenario in self.scenarios and self.affects(release) and bool(failures)
                and all(f.kind in self.kinds and re.search(self.pattern, f.message)
                        for f in failures)
                and (self.signature is None
                     or any(re.search(self.signature, f"{f.message}\n{f.evidence}")
                            for f in failures)))

    def describe(self) -> str:
        kernels = f"{self.first}..{self.fixed_in}" if self.fixed_in else f"{self.first} and later"
        kinds = ", ".join(k.value for k in self.kinds)
        return (f"known kernel bug on {kernels}: {self.reference} ({kinds}); "
                f"evidence: {self.evidence}")


_AFTER_RECOVERY = r"kernel log line\(s\) of timeouts or resets after the last recovery"
_DOORBELL_CONFIG_BUG = (
    "06c59d427017 \"nvme: Inform controller of doorbell config before unquiescing IO "
    "queues\" (lore 20240110182855.1833512-1-wab@google.com, applied for 6.8; not in 6.1.y; "
    "6.12 has it): a reset that requeues stranded I/O submits it before the controller knows "
    "the shadow doorbells, so it times out again, and every reset after that does the same")

# Every record comes with its evidence in known-bugs/<name>/ (kernel log, the fix tested
# with --nvme-src, the commands that showed it).
KNOWN: tuple[KnownFailure, ...] = (
    KnownFailure(
        scenarios=("reset-under-load", "reset-under-load-2cpu", "reset-under-load-2ns",
                   "reset-under-load-2ctrl", "reset-storm", "flr-under-load",
                   "admin-during-reset", "poll-queues", "bus-master-off"),
        first="4.12", fixed_in="5.16", kind=FailureKind.NOT_RECOVERED,
        pattern=r"nvme\d (not live within \d+s of a reset|did not reach 'live' within)"
                r"|concurrent resets returned .*none was accepted",
        reference="58847f12fe78 \"nvme-pci: clear shadow doorbell memory on resets\" "
                  "(v5.16; not in 5.10.y): shadow doorbell memory kept across a reset makes "
                  "the driver skip the MMIO doorbell of requeued I/O, the reset waits 30 s "
                  "for it, then removes the controller",
        evidence="known-bugs/linux-5.10-stale-shadow-doorbells/: fails on debian:5.10 "
                 "(5.10.262), passes on 6.1 and 6.12 and on 5.10 with the fix backported "
                 "(--nvme-src)"),
    KnownFailure(
        scenarios=("bus-master-off", "mmio-off", "dead-during-reset", "fi-io-timeout"),
        first="4.12", fixed_in="6.8", kind=FailureKind.UNSTABLE,
        pattern=_AFTER_RECOVERY, reference=_DOORBELL_CONFIG_BUG,
        evidence="known-bugs/linux-6.1-doorbell-config-after-requeue/: fails on debian:6.1 "
                 "(6.1.192), passes on 6.12 and on 6.1 with the fix backported (--nvme-src)"),
    # The same bug after a reset the guest asked for: rare (the reset must find commands the
    # device has not fetched yet), so told by its mechanism, not by the scenario alone.
    KnownFailure(
        scenarios=("reset-under-load", "reset-under-load-2cpu", "reset-under-load-2ns",
                   "reset-under-load-2ctrl", "admin-during-reset", "reset-storm",
                   "poll-queues"),
        # Unstable when what the reset requeued goes out and later I/O is not fetched;
        # not live when the requeued requests themselves are not, so the reset waits for them
        first="4.12", fixed_in="6.8", kind=(FailureKind.UNSTABLE, FailureKind.NOT_RECOVERED),
        pattern=_AFTER_RECOVERY + r"|nvme\d+ not live within \d+s of a reset",
        reference=_DOORBELL_CONFIG_BUG,
        signature=r"request\(s\) had been requeued by the last reset",
        evidence="known-bugs/linux-6.1-doorbell-config-after-requeue/ (sysfs resets): seen "
                 "in about 1 in 17 reset-under-load iterations on debian:6.1 and in CI's "
                 "admin-during-reset; made certain by a patch that widens the window "
                 "(widen-unfetched-at-reset.patch): fails on 6.1, passes on 6.12 and on 6.1 "
                 "with the fix backported"),
    KnownFailure(
        scenarios=("ns-churn-during-reset",),
        first="6.1", fixed_in="6.7", kind=(FailureKind.HANG, FailureKind.OOPS),
        pattern=r"task hung in ",
        signature=r"nvme_wait_freeze\+\S+ \[nvme_core\]\s+nvme_reset_work",
        reference="839a40d1e730 \"nvme: fix deadlock between reset and scan\" (v6.7, "
                  "6.6.13; not in 6.1.y): a namespace the scan adds after the reset froze "
                  "the queues is never frozen, and the reset waits for it to freeze forever",
        evidence="known-bugs/linux-6.1-scan-reset-deadlock/: hangs on debian:6.1 (6.1.192) "
                 "with seed 20261121, every time when a reset is started inside a widened "
                 "scan (directed-repro.sh); passes on 6.12 and on 6.1 with the fix backported "
                 "(--nvme-src). 5.10 lacks the fix too, but hangs there are not yet told apart "
                 "from its stale shadow doorbells (known-bugs/unconfirmed-5.10-namespace-"
                 "scenarios/)"),
)


def explain(scenario: str, release: str, failures: Sequence[Failure],
            known: Sequence[KnownFailure] = KNOWN) -> KnownFailure | None:
    """The recorded bug that accounts for these failures, if one does."""
    return next((k for k in known if k.explains(scenario, release, failures)), None)


def verdict(scenario: str, release: str, failures: Sequence[Failure],
            known: Sequence[KnownFailure] = KNOWN) -> tuple[Status, KnownFailure | None]:
    """An iteration's status in a report: PASS, KNOWN (with the bug), or FAIL."""
    if not failures:
        return Status.PASS, None
    bug = explain(scenario, release, failures, known)
    return (Status.KNOWN if bug else Status.FAIL), bug
