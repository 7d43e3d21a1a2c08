"""Recorded kernel bugs: which drivers, failures and mechanisms a record accounts for."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from harness.reading import kmsg
from harness.reading.verdict import Failure, FailureKind
from harness.recovery import known, scenarios
from harness.recovery.known import Driver, KnownFailure, Mechanism, version_tuple
from harness.report import Status

ROOT = Path(__file__).resolve().parents[2]
SOURCES = Path(__file__).parent / "data" / "nvme-src"  # excerpts of Debian's drivers/nvme/host
RECORD = KnownFailure(("reset-storm",), kernels=("debian:6.1",), first="6.1", fixed_in=("6.3",),
                      codes=("hung-task",), mechanism=Mechanism(kernel_log=r"nvme_reset_work"),
                      reference="0123456789ab \"nvme: a bug\"",
                      evidence="known-bugs/linux-6.1-scan-reset-deadlock/")
HANG = Failure(FailureKind.HANG, "the guest kernel reported a hung task",
               "INFO: task kworker blocked\n nvme_reset_work+0x1c/0x40 [nvme]", code="hung-task")
STOCK_6_1 = Driver("debian:6.1", "6.1.0-57-amd64", "6.1.192")
STOCK_6_12 = Driver("debian:6.12", "6.12.118+deb13-amd64", "6.12.118")
STOCK_5_10 = Driver("debian:5.10", "5.10.0-46-amd64", "5.10.262")


def test_version_tuple() -> None:
    assert version_tuple("6.1.192") == (6, 1, 192)
    assert version_tuple("6.1.0-56-amd64") == (6, 1, 0)
    assert version_tuple("6.12") == (6, 12)
    with pytest.raises(ValueError, match="not a kernel version"):
        version_tuple("linux")


@pytest.mark.parametrize(("version", "affected"), [
    ("6.0.5", False), ("6.1.192", True), ("6.2.1", True), ("6.3", False), ("6.3.0", False),
    ("6.12.9", False)])
def test_affected_range_excludes_the_fix(version: str, affected: bool) -> None:
    assert RECORD.affects(version) is affected


@pytest.mark.parametrize(("version", "affected"), [
    ("6.1.192", True), ("6.6.12", True), ("6.6.13", False), ("6.6.70", False),
    ("6.7.0", False), ("6.12.118", False)])
def test_a_fix_in_a_stable_release_counts_in_its_own_series(version: str,
                                                            affected: bool) -> None:
    stable = KnownFailure(("reset-storm",), ("debian:6.1",), "6.1", ("6.6.13", "6.7"),
                          ("hung-task",), Mechanism(kernel_log="x"), "ref", "ev")
    assert stable.affects(version) is affected


def test_explains_only_its_own_failure() -> None:
    assert known.verdict("reset-storm", STOCK_6_1, [HANG], [RECORD]).bug is RECORD
    # another scenario, another kernel, another code, another mechanism: not this bug
    assert known.verdict("reset-under-load", STOCK_6_1, [HANG], [RECORD]).status is Status.FAIL
    assert known.verdict("reset-storm", STOCK_6_12, [HANG], [RECORD]).status is Status.FAIL
    assert known.verdict("reset-storm", STOCK_6_1, [
        Failure(FailureKind.LOST_DATA, "nvme_reset_work", HANG.evidence)], [RECORD]
    ).status is Status.FAIL
    assert known.verdict("reset-storm", STOCK_6_1, [
        Failure(FailureKind.HANG, HANG.message, "blk_mq_freeze_queue+0x1/0x2",
                code="hung-task")], [RECORD]).status is Status.FAIL


def test_a_known_verdict_names_the_kernel_that_showed_it() -> None:
    both = replace(RECORD, kernels=("debian:5.10", "debian:6.1"))
    said = known.verdict("reset-storm", STOCK_6_1, [HANG], [both]).describe()
    assert said.startswith("known kernel bug on debian:6.1 (from 6.1, fixed in 6.3): ")
    assert both.describe().startswith("known kernel bug on debian:5.10, debian:6.1 ")


def test_the_message_is_never_read() -> None:
    # the mechanism is in the evidence and the code, so a reworded message changes nothing,
    # and a message that names the mechanism without the evidence excuses nothing
    reworded = Failure(FailureKind.HANG, "something else entirely", HANG.evidence,
                       code="hung-task")
    assert known.verdict("reset-storm", STOCK_6_1, [reworded], [RECORD]).bug is RECORD
    claimed = Failure(FailureKind.HANG, "nvme_reset_work", "", code="hung-task")
    assert known.verdict("reset-storm", STOCK_6_1, [claimed], [RECORD]).status is Status.FAIL


def test_a_second_unexplained_failure_is_not_excused() -> None:
    lost = Failure(FailureKind.LOST_DATA, "verify-only pass: EILSEQ")
    assert known.verdict("reset-storm", STOCK_6_1, [HANG, lost], [RECORD]).status \
        is Status.FAIL
    assert known.verdict("reset-storm", STOCK_6_1, [], [RECORD]) == known.Verdict(Status.PASS)


def test_a_driver_built_from_source_gets_no_stock_waiver() -> None:
    built = Driver("debian:6.1", "6.1.0-57-amd64", "6.1.192", Path("/src/nvme"))
    verdict = known.verdict("reset-storm", built, [HANG], [RECORD])
    assert verdict.status is Status.FAIL and verdict.resembles is RECORD
    assert verdict.describe() == ("resembles 0123456789ab (known kernel bug); not excused: "
                                  "this driver was built from /src/nvme, and the record has "
                                  "no check of a driver's source")


@pytest.mark.parametrize(("absent", "status"), [(True, Status.KNOWN), (False, Status.FAIL)])
def test_a_source_check_lets_a_record_excuse_a_driver_that_lacks_the_fix(
        absent: bool, status: Status) -> None:
    record = KnownFailure(**{**RECORD.__dict__, "fix_absent": lambda src: absent})
    built = Driver("debian:6.1", "6.1.0-57-amd64", "6.1.192", Path("/src/nvme"))
    verdict = known.verdict("reset-storm", built, [HANG], [record])
    assert verdict.status is status
    if status is Status.FAIL:
        assert "/src/nvme, which has the fix" in verdict.why


def test_an_unreadable_source_excuses_nothing(tmp_path: Path) -> None:
    verdict = known.verdict("reset-storm", STOCK_6_1.__class__(
        "debian:6.1", "6.1.0-57-amd64", "6.1.192", tmp_path / "gone"), [HANG], [
        KnownFailure(**{**RECORD.__dict__, "fix_absent": known._no_frozen_flag})])
    assert verdict.status is Status.FAIL and "cannot be read" in verdict.why


def test_a_kernel_the_user_built_gets_no_stock_waiver() -> None:
    built = Driver("/home/dev/linux", "6.1.192", None)
    verdict = known.verdict("reset-storm", built, [HANG], [RECORD])
    assert verdict.status is Status.FAIL
    assert verdict.why.startswith("the kernel /home/dev/linux was built by you")
    # nor a stock kernel of another series the record was not established on
    other = Driver("debian:5.10", "5.10.0-46-amd64", "5.10.262")
    assert "established on debian:6.1, not debian:5.10" in known.verdict(
        "reset-storm", other, [HANG], [RECORD]).why


@pytest.mark.parametrize(("release", "dbbuf_after_unquiesce", "dbbuf_kept", "no_frozen"), [
    ("5.10", True, True, True),  # 5.10 tells the doorbell config in nvme_dev_add()
    ("6.1", True, False, True),
    ("6.12", False, False, False)])
def test_the_fix_checks_read_the_real_sources(release: str, dbbuf_after_unquiesce: bool,
                                              dbbuf_kept: bool, no_frozen: bool) -> None:
    src = SOURCES / release
    assert known._dbbuf_set_after_unquiesce(src) is dbbuf_after_unquiesce
    assert known._dbbuf_kept_across_resets(src) is dbbuf_kept
    assert known._no_frozen_flag(src) is no_frozen


def patched_excerpts(release: str, record: str, patch: str, tmp_path: Path,
                     outside: int = 0) -> Path:
    """The excerpts of ``release`` with ``known-bugs/record/patch`` applied; as they hold
    whole functions only, each hunk is applied by its lines, not its line numbers.
    ``outside``: how many hunks change what the excerpts do not hold (left out)."""
    shutil.copytree(SOURCES / release, tmp_path / "src")
    text = (tmp_path / "src" / "pci.c").read_text()
    missing = 0
    for hunk in (ROOT / "known-bugs" / record / patch).read_text().split("\n@@")[1:]:
        lines = hunk.splitlines()[1:]
        old = "\n".join(ln[1:] for ln in lines if ln[:1] in (" ", "-"))
        new = "\n".join(ln[1:] for ln in lines if ln[:1] in (" ", "+"))
        if old not in text:
            missing += 1
        text = text.replace(old, new)
    assert missing == outside
    (tmp_path / "src" / "pci.c").write_text(text)
    return tmp_path / "src"


@pytest.mark.parametrize("release", ["5.10", "6.1"])
def test_the_doorbell_config_fix_backported_is_seen(release: str, tmp_path: Path) -> None:
    patch = {"5.10": "fix-06c59d427017-backport-5.10.patch",
             "6.1": "fix-06c59d427017-backport.patch"}[release]
    src = patched_excerpts(release, "linux-6.1-doorbell-config-after-requeue", patch, tmp_path)
    assert not known._dbbuf_set_after_unquiesce(src)


def test_every_record_is_fit_to_excuse() -> None:
    for record in known.KNOWN:
        assert known.problems(record, scenarios.names()) == [], record.reference
        assert record.fix_absent is not None  # each can judge a driver built from source


def test_a_record_without_a_mechanism_or_naming_what_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="a mechanism needs"):
        Mechanism()
    bogus = KnownFailure(("no-such-scenario", "reset-storm"), ("debian:4.19",), "6.1", ("6.x",),
                         (), Mechanism(requeued=True), "ref", "seen once, somewhere")
    assert known.problems(bogus, scenarios.names()) == [
        "no scenario 'no-such-scenario'", "no kernel 'debian:4.19'",
        "accounts for no failure code", "not a kernel version: '6.x'",
        "its evidence names no folder of known-bugs/ that exists"]


NOT_LIVE_5_10 = """\
kernel log:
[   42.171791] nvme nvme0: I/O 262 QID 1 timeout, disable controller
[   42.196279] nvme nvme0: failed to mark controller live state
[   42.196994] nvme nvme0: Removing after probe failure status: -19"""  # kernel-log-5.10.txt


@pytest.mark.parametrize(("message", "code"), [
    ("nvme0 not live within 60s of a reset (state: unreadable)", "not-live"),
    ("concurrent resets returned ['1', '1', '1', '1']: none was accepted", "resets-refused"),
])
def test_the_5_10_shadow_doorbell_bug_explains_what_it_did_on_5_10_only(message: str,
                                                                         code: str) -> None:
    failure = [Failure(FailureKind.NOT_RECOVERED, message, NOT_LIVE_5_10, code=code)]
    verdict = known.verdict("flr-under-load", STOCK_5_10, failure)
    assert verdict.bug is not None and "58847f12fe78" in verdict.bug.reference
    # the driver's own alarms of the same lines (not marked live, removed) are part of it
    alarms = [Failure(FailureKind.DRIVER_ALARM, a.message, a.evidence, code=a.alarm.code)
              for a in kmsg.find_alarms(NOT_LIVE_5_10)]
    assert sorted(a.code for a in alarms) == ["alarm-not-marked-live",
                                              "alarm-removed-after-probe-failure"]
    assert known.verdict("flr-under-load", STOCK_5_10, [*failure, *alarms]).bug is verdict.bug
    assert known.verdict("flr-under-load", STOCK_6_1, failure).status is Status.FAIL
    # a controller lost without the reset timing out on I/O is something else
    plain = [Failure(FailureKind.NOT_RECOVERED, message, "kernel log:", code=code)]
    assert known.verdict("flr-under-load", STOCK_5_10, plain).status is Status.FAIL
    # the same where the reset also changed the number of queues
    assert known.verdict("queue-count-under-load", STOCK_5_10,
                         [*failure, *alarms]).bug is verdict.bug
    assert known.verdict("queue-count-under-load", STOCK_5_10, plain).status is Status.FAIL
    assert known.verdict("flr-under-load", STOCK_5_10,
                         [Failure(FailureKind.LOST_DATA, "verify-only pass: EILSEQ")]
                         ).status is Status.FAIL


def _recorded_hung_tasks(name: str) -> list[Failure]:
    """The failures the scenario reports for a recorded console log: one per hung task."""
    text = (ROOT / "known-bugs" / name).read_text()
    return [Failure(FailureKind.OOPS, o.title, "\n".join(o.lines), code="hung-task")
            for o in kmsg.scan(text)]


def _deadlock_hang(oopses: list[Failure], held: int | None = 0) -> Failure:
    """The iteration's own failure for the first hung task, as the runner makes it: with
    what the driver held then (blk-mq's busy lists)."""
    return Failure(FailureKind.HANG, f"the guest kernel reported a hung task: "
                   f"{oopses[0].message}", oopses[0].evidence, code="hung-task", held=held)


def test_the_scan_reset_deadlock_is_recognised_by_where_the_reset_waits() -> None:
    failures = _recorded_hung_tasks(
        "linux-6.1-scan-reset-deadlock/console-6.1-seed20261121.txt")
    assert len(failures) == 3  # the reset worker, fio and the sysfs writer, all stuck
    hang = _deadlock_hang(failures)
    bug = known.verdict("ns-churn-during-reset", STOCK_6_1, [hang, *failures]).bug
    assert bug is not None and "839a40d1e730" in bug.reference
    assert known.verdict("ns-churn-during-reset", STOCK_5_10, [hang, *failures]).bug is bug
    # fixed in 6.7; another scenario; another failure besides: not excused
    assert known.verdict("ns-churn-during-reset", STOCK_6_12, [hang, *failures]).status \
        is Status.FAIL
    assert known.verdict("rescan-during-reset", STOCK_6_1, [hang, *failures]).status \
        is Status.FAIL
    lost = Failure(FailureKind.LOST_DATA, "verify-only pass: EILSEQ")
    assert known.verdict("ns-churn-during-reset", STOCK_6_1, [hang, *failures, lost]).status \
        is Status.FAIL


def test_a_reset_waiting_for_stranded_requests_is_not_the_scan_reset_deadlock() -> None:
    # the reset waits in the same place behind requeued I/O its doorbell bugs stranded with
    # the driver (5.10 and 6.1 have both): requests held, or not known to be none
    failures = _recorded_hung_tasks(
        "linux-6.1-scan-reset-deadlock/console-6.1-seed20261121.txt")
    for held in (16, None):
        hang = _deadlock_hang(failures, held)
        for stock in (STOCK_5_10, STOCK_6_1):
            found = known.verdict("ns-churn-during-reset", stock, [hang, *failures])
            assert found.status is Status.FAIL
    # the hung-task oopses alone say nothing of what was held
    assert known.verdict("ns-churn-during-reset", STOCK_6_1, failures).status is Status.FAIL


def test_a_hang_somewhere_else_is_not_the_scan_reset_deadlock() -> None:
    # the same cascade of hung tasks, but the reset is not waiting for a queue to freeze
    failures = [f for f in _recorded_hung_tasks(
        "linux-6.1-scan-reset-deadlock/console-6.1-seed20261121.txt")
        if "nvme_wait_freeze" not in f.evidence]
    assert failures
    assert known.verdict("ns-churn-during-reset", STOCK_6_1,
                         [_deadlock_hang(failures), *failures]).status is Status.FAIL


def test_the_blocked_tasks_show_the_deadlock_the_detector_reported_elsewhere() -> None:
    # 5.10 widened: the hung task the detector reported first may be the shell; the dump of
    # blocked tasks (the evidence's) shows the reset worker waiting for the freeze
    dump = (ROOT / "tests/unit/data/blocked/5.10-scan-reset-deadlock-widened.txt").read_text()
    shell = Failure(FailureKind.HANG, "the guest kernel reported a hung task: INFO: task hung "
                    "in nvme_sysfs_reset", "INFO: task bash:227 blocked for more than 10 "
                    "seconds.\n flush_work+0x5c/0x90\n nvme_sysfs_reset+0x48/0x70 [nvme_core]",
                    code="hung-task", held=0)
    assert known.verdict("ns-churn-during-reset", STOCK_5_10, [shell]).status is Status.FAIL
    dump = "\n".join(map(kmsg.strip_prefix, dump.splitlines()))  # as the evidence keeps it
    with_dump = replace(shell, evidence=shell.evidence + "\n" + dump)
    assert known.verdict("ns-churn-during-reset", STOCK_5_10, [with_dump]).status \
        is Status.KNOWN


def test_a_suspend_that_hangs_behind_requeued_requests_is_known_on_5_10_and_6_1() -> None:
    # the iteration's failures as the runner makes them: the load stuck (or a hung task)
    # with what the resets around the suspend requeued, and the hung-task oopses after it
    stuck = Failure(FailureKind.HANG, "load0: no write completed within 20s of the recovery, "
                    "the load still running; 1 request(s) had been requeued by the last reset",
                    code="io-stuck", requeued=1)
    oops = Failure(FailureKind.OOPS, "INFO: task hung in blk_mq_freeze_queue_wait",
                   code="hung-task")
    found = known.verdict("suspend-under-load", STOCK_5_10, [stuck, oops])
    assert found.status is Status.KNOWN and found.bug is not None
    assert found.bug.commit == "58847f12fe78"
    # no requeue before it: not the mechanism
    assert known.verdict("suspend-under-load", STOCK_5_10,
                         [replace(stuck, requeued=0), oops]).status is Status.FAIL
    # 6.1 has the other shadow doorbell bug (06c59d427017); 6.12 has both fixes: a finding
    assert known.verdict("suspend-under-load", STOCK_6_1, [stuck, oops]).bug.commit == \
        "06c59d427017"
    later = known.verdict("suspend-under-load", STOCK_6_12, [stuck, oops])
    assert later.status is Status.FAIL and later.resembles is not None
    # nor does the record reach past these failures or this scenario
    timeout = Failure(FailureKind.UNSTABLE, "an I/O timeout after the recovery", requeued=1)
    assert known.verdict("suspend-under-load", STOCK_5_10, [stuck, timeout]).status \
        is Status.FAIL
    assert known.verdict("cpu-offline-under-load", STOCK_5_10, [stuck]).status is Status.FAIL


def test_io_never_fetched_after_a_fatal_aer_error_is_known_only_on_5_10() -> None:
    # the failure as the runner makes it once the driver's I/O timeout has passed: writes
    # stuck after the link reset's recovery, the driver aborting what it submitted since
    evidence = ("kernel log:\n[   44.247931] nvme nvme0: I/O 742 QID 1 timeout, aborting\n"
                "[   44.248234] nvme nvme0: Abort status: 0x0")
    stuck = Failure(FailureKind.HANG, "load0: no write completed within 20s of the recovery, "
                    "the load still running", evidence, code="io-stuck")
    found = known.verdict("aer-under-load", STOCK_5_10, [stuck])
    assert found.status is Status.KNOWN and found.bug is not None
    assert found.bug.commit == "58847f12fe78"
    # queues stopped, nothing submitted: no timeout, not this bug
    stopped = replace(stuck, evidence="kernel log:\n[ 9.8] nvme nvme0: restart after slot reset")
    assert known.verdict("aer-under-load", STOCK_5_10, [stopped]).status is Status.FAIL
    # an admin command's timeout is not the I/O the doorbells strand
    admin = replace(stuck, evidence="[ 44.2] nvme nvme0: I/O 12 QID 0 timeout, aborting")
    assert known.verdict("aer-under-load", STOCK_5_10, [admin]).status is Status.FAIL
    # 6.1 and 6.12 have the fix; a not-live controller is another failure
    assert known.verdict("aer-under-load", STOCK_6_12, [stuck]).status is Status.FAIL
    assert known.verdict("aer-under-load", STOCK_5_10,
                         [replace(stuck, code="not-live")]).status is Status.FAIL


def test_a_cpu_offline_that_hangs_behind_io_never_fetched_is_known_only_on_5_10() -> None:
    # the failures as the runner makes them once the driver's I/O timeout has passed: the
    # reset's scan hung in the queue's freeze, the driver timing out what it submitted since
    evidence = ("Workqueue: nvme-wq nvme_scan_work [nvme_core]\n blk_mq_freeze_queue_wait+0x66\n"
                "blk-mq: 16 request(s) with the driver, not completed\nkernel log:\n"
                "[   40.157219] nvme nvme0: I/O 226 QID 1 timeout, aborting")
    hang = Failure(FailureKind.HANG, "the guest kernel reported a hung task: INFO: task hung "
                   "in blk_mq_freeze_queue_wait", evidence, code="hung-task")
    oops = Failure(FailureKind.OOPS, "INFO: task hung in blk_queue_enter", code="hung-task")
    # rescan-during-reset's hangs (a reset waiting for the freeze) are the same bug
    for scenario in ("cpu-offline-under-load", "cpu-offline-under-load-4cpu",
                     "rescan-during-reset"):
        found = known.verdict(scenario, STOCK_5_10, [hang, oops])
        assert found.status is Status.KNOWN and found.bug is not None
        assert found.bug.commit == "58847f12fe78"
    # a timeout during the reset that waits for the same I/O, which then removes the
    # controller: the driver's alarms come with it
    during = replace(hang, evidence="[ 54.49] nvme nvme0: I/O 768 QID 1 timeout, disable "
                                    "controller")
    alarms = [Failure(FailureKind.OOPS, "failed to mark controller live state",
                      code="alarm-not-marked-live"),
              Failure(FailureKind.OOPS, "Removing after probe failure status: -19",
                      code="alarm-removed-after-probe-failure")]
    assert known.verdict("cpu-offline-under-load", STOCK_5_10, [during, oops, *alarms]).status \
        is Status.KNOWN
    # nothing timed out (the requests were never the driver's), or only an admin command:
    # not the mechanism
    for words in ("blk-mq: no request with the driver", "[ 40.1] nvme nvme0: I/O 3 QID 0 "
                  "timeout, aborting"):
        assert known.verdict("cpu-offline-under-load", STOCK_5_10,
                             [replace(hang, evidence=words), oops]).status is Status.FAIL
    # 6.1 and 6.12 have the fix; lost data or a controller not live is another failure
    assert known.verdict("cpu-offline-under-load", STOCK_6_12, [hang]).status is Status.FAIL
    assert known.verdict("cpu-offline-under-load", STOCK_6_1, [hang]).status is Status.FAIL
    assert known.verdict("cpu-offline-under-load", STOCK_5_10,
                         [hang, replace(hang, code="lost-data")]).status is Status.FAIL


def test_a_poll_queue_without_a_poll_map_is_known_on_6_1_and_6_12_only() -> None:
    # as the runner makes them when CPU 1's queue became a poll queue nobody remapped
    line = "[   15.57] nvme nvme0: I/O tag 256 (5100) QID 2 timeout, completion polled"
    unstable = Failure(FailureKind.UNSTABLE, "3 kernel log line(s) of timeouts", line,
                       code="unstable")
    stalled = Failure(FailureKind.SLOW, "no write completed on nvme0 for 12.3s",
                      code="io-stalled")
    for driver in (STOCK_6_1, STOCK_6_12):
        found = known.verdict("poll-queues-added-under-load", driver, [unstable, stalled])
        assert found.status is Status.KNOWN and found.bug is not None
    # 6.1 words it without the tag's generation
    assert known.verdict("poll-queues-added-under-load", STOCK_6_1, [replace(
        unstable, evidence="[ 14.78] nvme nvme0: I/O 960 QID 2 timeout, completion polled")]
    ).status is Status.KNOWN
    # a timeout the driver had to abort or reset for is another bug, as is one elsewhere
    for words in ("[ 15.5] nvme nvme0: I/O 256 QID 2 timeout, aborting",
                  "[ 15.5] nvme nvme0: I/O 3 QID 0 timeout, completion polled"):
        assert known.verdict("poll-queues-added-under-load", STOCK_6_12,
                             [replace(unstable, evidence=words)]).status is Status.FAIL
    assert known.verdict("queue-count-under-load", STOCK_6_12, [unstable]).status \
        is Status.FAIL
    assert known.verdict("poll-queues-added-under-load", STOCK_5_10, [unstable]).status \
        is Status.FAIL


def test_a_poll_queue_added_on_5_10_is_known_as_its_stale_doorbells() -> None:
    # the load's errors once the driver removed the controller its timeout disabled
    lines = "[   26.57] nvme nvme0: I/O 320 QID 1 timeout, disable controller\n"
    failures = [Failure(FailureKind.IO_ERROR, "the load saw: job load: error EIO", "fio: io_u "
                        "error on file /dev/nvme0n1: Input/output error", code="io-error"),
                Failure(FailureKind.DRIVER_ALARM, "failed to mark controller live state",
                        lines, code="alarm-not-marked-live"),
                Failure(FailureKind.DRIVER_ALARM, "Removing after probe failure status: -19",
                        lines, code="alarm-removed-after-probe-failure")]
    found = known.verdict("poll-queues-added-under-load", STOCK_5_10, failures)
    assert found.status is Status.KNOWN and found.bug is not None
    assert found.bug.commit == "58847f12fe78"
    # without the timeout that disabled the controller, I/O errors are not explained
    assert known.verdict("poll-queues-added-under-load", STOCK_5_10,
                         [replace(f, evidence="") for f in failures]).status is Status.FAIL
    assert known.verdict("poll-queues-added-under-load", STOCK_6_12, failures).status \
        is Status.FAIL


@pytest.mark.parametrize(("release", "absent"), [("5.10", False), ("6.1", True),
                                                   ("6.12", True)])
def test_the_poll_map_check_reads_the_real_sources(release: str, absent: bool,
                                                   tmp_path: Path) -> None:
    assert known._poll_queues_without_poll_map(SOURCES / release) is absent
    if not absent:
        return
    src = patched_excerpts(release, "linux-6.1-poll-queue-without-poll-map",
                           "fix-no-poll-queue-without-map.patch", tmp_path)
    assert not known._poll_queues_without_poll_map(src)


def test_requests_requeued_across_a_queue_layout_change_are_known_on_6_12_only() -> None:
    # as the runner makes them when a reset's requeued requests went to the new layout
    failures = [Failure(FailureKind.IO_ERROR, "the load saw: job load: error EIO",
                        "fio: io_u error on file /dev/nvme0n1: Input/output error",
                        code="io-error"),
                Failure(FailureKind.NOT_RECOVERED, "nvme0 was out of live for 30.2s",
                        code="slow-reset", requeued=24)]
    found = known.verdict("queue-count-under-load", STOCK_6_12, failures)
    assert found.status is Status.KNOWN and found.bug is not None
    assert found.bug.reference.startswith("unreported")
    # nothing requeued: not this mechanism; on another kernel or scenario: not established
    assert known.verdict("queue-count-under-load", STOCK_6_12,
                         [replace(f, requeued=0) for f in failures]).status is Status.FAIL
    assert known.verdict("queue-count-under-load", STOCK_6_1, failures).status is Status.FAIL
    assert known.verdict("poll-queues", STOCK_6_12, failures).status is Status.FAIL
    # a failure of another kind beside it is not explained
    assert known.verdict("queue-count-under-load", STOCK_6_12, [*failures, Failure(
        FailureKind.LOST_DATA, "verify failed", code="lost-data")]).status is Status.FAIL


@pytest.mark.parametrize("release", ["5.10", "6.1", "6.12"])
def test_the_layout_check_reads_the_real_sources(release: str, tmp_path: Path) -> None:
    assert known._requeue_across_layout(SOURCES / release)
    if release != "6.12":
        return
    # (the struct's new member and the helper's place are not in the excerpts)
    src = patched_excerpts(release, "linux-6.12-requeue-across-queue-layout",
                           "fix-drain-before-new-queue-counts.patch", tmp_path, outside=2)
    assert not known._requeue_across_layout(src)


def test_a_suspend_whose_reset_requeued_is_known_on_6_1_as_the_doorbell_config_bug() -> None:
    hung = Failure(FailureKind.HANG, "the guest kernel reported a hung task",
                   "INFO: task fio:204 blocked\n __bio_queue_enter+0x1d/0x40", code="hung-task",
                   requeued=16)
    found = known.verdict("suspend-under-load", STOCK_6_1, [hung])
    assert found.status is Status.KNOWN and found.bug is not None
    assert found.bug.commit == "06c59d427017"
    assert known.verdict("suspend-under-load", STOCK_6_1, [replace(hung, requeued=0)]).status \
        is Status.FAIL
    assert known.verdict("suspend-under-load", STOCK_6_12, [hung]).status is Status.FAIL
