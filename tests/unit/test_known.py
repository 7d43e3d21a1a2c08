"""Recorded kernel bugs: which kernels and which failures a record accounts for."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import kmsg, known
from harness.known import KnownFailure, kernel_version
from harness.report import Status
from harness.scenario import Failure, FailureKind

RECORD = KnownFailure(("reset-storm",), first="6.1", fixed_in="6.3", kind=FailureKind.HANG,
                      pattern=r"nvme_reset_work", reference="https://example.invalid/bug",
                      evidence="seed 42")
HANG = Failure(FailureKind.HANG, "INFO: task hung in nvme_reset_work")
ROOT = Path(__file__).resolve().parents[2]


def test_kernel_version() -> None:
    assert kernel_version("6.1.0-56-amd64") == (6, 1)
    assert kernel_version("6.12.9+bpo-amd64") == (6, 12)
    with pytest.raises(ValueError, match="not a kernel release"):
        kernel_version("linux")


@pytest.mark.parametrize(("release", "affected"), [
    ("6.0.5", False), ("6.1.0-56-amd64", True), ("6.2.1", True), ("6.3.0", False),
    ("6.12.9", False)])
def test_affected_range_excludes_the_fix(release: str, affected: bool) -> None:
    assert RECORD.affects(release) is affected


def test_unfixed_bug_affects_every_later_kernel() -> None:
    open_ended = KnownFailure(("reset-storm",), "6.1", None, FailureKind.HANG, "x", "ref", "ev")
    assert open_ended.affects("6.12.9")
    assert "6.1 and later" in open_ended.describe()


def test_explains_only_its_own_failure() -> None:
    assert known.explain("reset-storm", "6.1.0", [HANG], [RECORD]) is RECORD
    # another scenario, another kernel, another kind, another message: not this bug
    assert known.explain("reset-under-load", "6.1.0", [HANG], [RECORD]) is None
    assert known.explain("reset-storm", "6.3.0", [HANG], [RECORD]) is None
    assert known.explain("reset-storm", "6.1.0",
                         [Failure(FailureKind.LOST_DATA, "nvme_reset_work")], [RECORD]) is None
    assert known.explain("reset-storm", "6.1.0",
                         [Failure(FailureKind.HANG, "task hung in blk_mq_freeze_queue")],
                         [RECORD]) is None


def test_a_second_unexplained_failure_is_not_excused() -> None:
    lost = Failure(FailureKind.LOST_DATA, "verify-only pass: EILSEQ")
    assert known.explain("reset-storm", "6.1.0", [HANG, lost], [RECORD]) is None
    assert known.explain("reset-storm", "6.1.0", [], [RECORD]) is None


def test_nothing_is_recorded_without_evidence() -> None:
    for record in known.KNOWN:
        assert record.reference and record.evidence
        kernel_version(record.first)


@pytest.mark.parametrize("message", [
    "nvme0 not live within 60s of a reset (state: unreadable: guest command 'cat "
    "/sys/class/nvme/nvme0/state' exited 1: cat: /sys/class/nvme/nvme0/state: No such file or "
    "directory)",
    "nvme0 did not reach 'live' within 60s (last state: gone)",
    "concurrent resets returned ['1', '1', '1', '1']: none was accepted",
])
def test_the_5_10_shadow_doorbell_bug_explains_what_it_did_on_5_10_only(message: str) -> None:
    failure = [Failure(FailureKind.NOT_RECOVERED, message)]
    bug = known.explain("flr-under-load", "5.10.0-46-amd64", failure)
    assert bug is not None and "58847f12fe78" in bug.reference
    assert known.explain("flr-under-load", "6.1.0-56-amd64", failure) is None
    assert known.explain("flr-under-load", "5.10.0-46-amd64",
                         [Failure(FailureKind.LOST_DATA, "verify-only pass: EILSEQ")]) is None


def _recorded_hung_tasks(name: str) -> list[Failure]:
    """The failures the scenario reports for a recorded console log: one per hung task."""
    text = (ROOT / "known-bugs" / name).read_text()
    return [Failure(FailureKind.OOPS, o.title, "\n".join(o.lines)) for o in kmsg.scan(text)]


def test_the_6_1_scan_reset_deadlock_is_recognised_by_where_the_reset_waits() -> None:
    failures = _recorded_hung_tasks(
        "linux-6.1-scan-reset-deadlock/console-6.1-seed20261121.txt")
    assert len(failures) == 3  # the reset worker, fio and the sysfs writer, all stuck
    bug = known.explain("ns-churn-during-reset", "6.1.0-56-amd64", failures)
    assert bug is not None and "839a40d1e730" in bug.reference
    hang = Failure(FailureKind.HANG, f"the guest kernel reported a hung task: "
                   f"{failures[0].message}\n{failures[0].evidence}")
    assert known.explain("ns-churn-during-reset", "6.1.0-56-amd64", [hang, *failures]) is bug
    # fixed in 6.7; another scenario; another failure besides: not excused
    assert known.explain("ns-churn-during-reset", "6.12.117+deb13-amd64", failures) is None
    assert known.explain("ns-churn-during-reset", "5.10.0-46-amd64", failures) is None
    assert known.explain("rescan-during-reset", "6.1.0-56-amd64", failures) is None
    lost = Failure(FailureKind.LOST_DATA, "verify-only pass: EILSEQ")
    assert known.explain("ns-churn-during-reset", "6.1.0-56-amd64", [*failures, lost]) is None


def test_a_hang_somewhere_else_is_not_the_scan_reset_deadlock() -> None:
    # the same cascade of hung tasks, but the reset is not waiting for a queue to freeze
    failures = [f for f in _recorded_hung_tasks(
        "linux-6.1-scan-reset-deadlock/console-6.1-seed20261121.txt")
        if "nvme_wait_freeze" not in f.evidence]
    assert failures
    assert known.explain("ns-churn-during-reset", "6.1.0-56-amd64", failures) is None


def test_verdict_tells_a_pass_a_known_bug_and_a_driver_failure_apart() -> None:
    assert known.verdict("reset-storm", "6.2.0", [], [RECORD]) == (Status.PASS, None)
    assert known.verdict("reset-storm", "6.2.0", [HANG], [RECORD]) == (Status.KNOWN, RECORD)
    assert known.verdict("reset-storm", "6.3.0", [HANG], [RECORD]) == (Status.FAIL, None)
