"""What an iteration found: its failures, each classified and with its evidence, and the
statuses a report gives. Pure data, imported by every layer that judges or reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from harness.reading.throughput import Judgement


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "FAIL"  # the driver misbehaved
    KNOWN = "known"  # it did, the way a recorded kernel bug does
    SKIP = "skip"
    ERROR = "ERROR"  # the harness could not test


class FailureKind(enum.Enum):
    """What broke, the most serious first: an iteration reports its failures in this order."""

    LOST_DATA = "lost or corrupted data"
    IO_ERROR = "I/O error where recovery should be transparent"
    HANG = "hang"
    NOT_RECOVERED = "controller did not return to live"
    OOPS = "kernel oops"
    DRIVER_ALARM = "the driver reported an impossible state"
    UNSTABLE = "no stable recovery: timeouts or resets after it"
    SLOW = "throughput did not come back after recovering"


# Failures after which the guest is still usable: the loads can still be judged and verified
LEAVES_GUEST_USABLE = frozenset({FailureKind.LOST_DATA, FailureKind.IO_ERROR,
                                 FailureKind.UNSTABLE, FailureKind.SLOW})


@dataclass(frozen=True)
class Failure:
    """What broke, in English and as facts: known-bug records match on the facts (its stable
    ``code`` and mechanism), never on the message, so rewording one changes no verdict."""

    kind: FailureKind
    message: str
    evidence: str = ""
    code: str = ""  # a stable reason code; the kind's name where no finer one is given
    requeued: int = 0  # requests the reset before the failure requeued (block_rq_requeue)
    # requests the driver held, dispatched and never completed, when a hang was found
    # (blk-mq's debugfs busy lists); None where not measured
    held: int | None = None

    def __post_init__(self) -> None:
        if not self.code:
            object.__setattr__(self, "code", self.kind.name.lower().replace("_", "-"))

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


def by_severity(failures: list[Failure]) -> tuple[Failure, ...]:
    """Each failure once, the most serious kind first."""
    severity = list(FailureKind)
    return tuple(sorted(dict.fromkeys(failures), key=lambda f: severity.index(f.kind)))


@dataclass(frozen=True)
class IterationResult:
    scenario: str
    seed: int
    failures: tuple[Failure, ...]
    recovery_s: tuple[float, ...]
    io_resume_s: tuple[float, ...]  # from each return to live to the next completed write
    throughput: tuple[Judgement, ...]  # one per recovery a load lived through
    duration: float
    artifacts: Path

    @property
    def passed(self) -> bool:
        return not self.failures
