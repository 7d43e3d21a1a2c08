"""An unstable recovery told apart by what the last reset requeued (block_rq_requeue).

The text is from `repro reset-under-load --seed 1` on debian:6.1 with the window-widening
patch of known-bugs/linux-6.1-doorbell-config-after-requeue (three resets; the last one
requeued what it found in flight, then the requests timed out and the controller reset).
"""

from __future__ import annotations

from dataclasses import replace

from harness.reading import kmsg
from harness.reading.timeline import Timeline
from harness.reading.verdict import Failure, FailureKind
from harness.recovery import known
from harness.recovery.verification import with_requeues
from harness.report import Status

DMESG = """\
[   21.638732] nvme nvme0: 1/0/0 default/read/poll queues
[   21.789997] nvme nvme0: Ignoring bogus Namespace Identifiers
[   23.543834] nvme nvme0: 1/0/0 default/read/poll queues
[   23.570592] nvme nvme0: Ignoring bogus Namespace Identifiers
[   25.540680] nvme nvme0: 1/0/0 default/read/poll queues
[   25.558271] nvme nvme0: Ignoring bogus Namespace Identifiers
[   56.337799] nvme nvme0: I/O 288 (I/O Cmd) QID 1 timeout, aborting
[   56.338393] nvme nvme0: I/O 289 (I/O Cmd) QID 1 timeout, aborting
[   56.341238] nvme nvme0: Abort status: 0x0
[   56.341456] nvme nvme0: Abort status: 0x0
[   87.001131] nvme nvme0: I/O 288 QID 1 timeout, reset controller
"""
TRACE = """\
# tracer: nop
        kworker/u2:4-158     [000] .....    21.566050: block_rq_requeue: 259,0 WS () 611704 + 8 [0]
        kworker/u2:4-158     [000] .N...    21.567250: block_rq_requeue: 259,0 R () 37928 + 8 [0]
        kworker/u2:4-158     [000] .N...    25.535207: block_rq_requeue: 259,0 W () 839336 + 8 [0]
        kworker/u2:4-158     [000] .N...    25.535311: block_rq_requeue: 259,0 W () 792800 + 8 [0]
        kworker/u2:4-158     [000] .N...    25.535326: block_rq_requeue: 259,0 R () 629856 + 8 [0]
        kworker/u2:1-40      [000] .....    87.030110: block_rq_requeue: 259,0 W () 839336 + 8 [0]
"""
PREVIOUS, LAST = 23.58, 25.56  # the kernel log's time at the last two recoveries


def test_requeues_are_read_from_the_trace_buffer() -> None:
    found = kmsg.parse_requeues(TRACE)
    assert len(found) == 6
    assert found[0] == kmsg.Requeue(21.56605, "259,0", 611704)
    assert found[4].sector == 629856


def test_a_recovery_that_held_needs_no_trace() -> None:
    def unread() -> list[kmsg.Requeue]:
        raise AssertionError("the trace was read for a stable recovery")
    assert kmsg.instability(DMESG, PREVIOUS, 100.0, unread) is None


def test_trouble_after_a_reset_that_requeued_says_how_many_it_requeued() -> None:
    found = kmsg.instability(DMESG, PREVIOUS, LAST, lambda: kmsg.parse_requeues(TRACE))
    assert found is not None
    # only the last reset's requeues: not the earlier reset's, not the one after the recovery
    assert [r.sector for r in found.requeued] == [839336, 792800, 629856]
    assert found.message.startswith("5 kernel log line(s) of timeouts or resets after the last "
                                    "recovery, first: [   56.337799] nvme nvme0: I/O 288")
    assert found.message.endswith("; 3 request(s) had been requeued by the last reset")
    assert found.evidence.splitlines()[0] == (
        "[   25.535207] requeued by the last reset: 259,0 sector 839336")
    assert found.evidence.splitlines()[-1].endswith("I/O 288 QID 1 timeout, reset controller")


def test_without_requeues_the_message_says_nothing_of_them() -> None:
    found = kmsg.instability(DMESG, 25.55, LAST, lambda: kmsg.parse_requeues(TRACE))
    assert found is not None and not found.requeued
    assert "requeued" not in found.message and "requeued" not in found.evidence


STOCK_6_1 = known.Driver("debian:6.1", "6.1.0-57-amd64", "6.1.192")
STOCK_6_12 = known.Driver("debian:6.12", "6.12.118+deb13-amd64", "6.12.118")


def _unstable(found: kmsg.Instability) -> list[Failure]:
    """The failure Context.check_stable makes of it."""
    return [Failure(FailureKind.UNSTABLE, found.message, found.evidence,
                    requeued=len(found.requeued))]


def test_the_6_1_doorbell_record_takes_a_reset_scenario_only_with_requeues() -> None:
    requeued = kmsg.instability(DMESG, PREVIOUS, LAST, lambda: kmsg.parse_requeues(TRACE))
    plain = kmsg.instability(DMESG, 25.55, LAST, lambda: kmsg.parse_requeues(TRACE))
    assert requeued is not None and plain is not None
    with_requeues, without = _unstable(requeued), _unstable(plain)
    verdict = known.verdict("reset-under-load", STOCK_6_1, with_requeues)
    assert verdict.status is Status.KNOWN and verdict.bug is not None
    assert "06c59d427017" in verdict.bug.reference
    assert known.verdict("admin-during-reset", STOCK_6_1, with_requeues).status \
        is Status.KNOWN
    # the fix is in 6.8: a later kernel failing so is a new finding, and says what it resembles
    later = known.verdict("reset-under-load", STOCK_6_12, with_requeues)
    assert later.status is Status.FAIL and later.resembles is not None
    assert later.describe().startswith("resembles 06c59d427017")
    # timeouts after a reset that requeued nothing are not this bug, in any scenario: a
    # device gone silent strands commands, so its reset requeues them too
    assert known.verdict("reset-under-load", STOCK_6_1, without).status is Status.FAIL
    assert known.verdict("bus-master-off", STOCK_6_1, without).status is Status.FAIL
    assert known.verdict("bus-master-off", STOCK_6_1, with_requeues).status is Status.KNOWN


def test_the_message_is_not_what_the_record_reads() -> None:
    requeued = kmsg.instability(DMESG, PREVIOUS, LAST, lambda: kmsg.parse_requeues(TRACE))
    assert requeued is not None
    reworded = [Failure(FailureKind.UNSTABLE, "the controller kept timing out",
                        requeued=len(requeued.requeued))]
    assert known.verdict("reset-under-load", STOCK_6_1, reworded).status is Status.KNOWN
    # and the sentence without the fact behind it excuses nothing
    claimed = [Failure(FailureKind.UNSTABLE, requeued.message, requeued.evidence)]
    assert known.verdict("reset-under-load", STOCK_6_1, claimed).status is Status.FAIL


def test_requeues_group_into_one_burst_per_reset() -> None:
    assert kmsg.requeue_bursts(kmsg.parse_requeues(TRACE)) == [
        (21.56605, 2), (25.535207, 3), (87.03011, 1)]
    assert kmsg.requeue_bursts([]) == []


def test_requeues_logged_after_the_recovery_mark_still_count_until_the_trouble() -> None:
    # the mark is the latest log line when the recovery was seen, which may come before the
    # reset's own requeues (a reset that logs nothing): up to the first timeout they count
    found = kmsg.instability(DMESG, PREVIOUS, 25.5, lambda: kmsg.parse_requeues(TRACE))
    assert found is not None and len(found.requeued) == 3


def test_a_reset_that_never_went_live_after_requeueing_is_the_same_record() -> None:
    # reset-under-load-2ns, widened: the requeued requests themselves were never fetched, so
    # the reset waited for them until the timeout removed the controller
    requeued = kmsg.parse_requeues(TRACE)[2:5]
    message = ("nvme0 not live within 60s of a reset (state: unreadable: guest command 'cat "
               "/sys/class/nvme/nvme0/state' exited 1)" + kmsg.requeued_note(requeued))
    assert message.endswith("; 3 request(s) had been requeued by the last reset")
    failure = [Failure(FailureKind.NOT_RECOVERED, message, code="not-live",
                       requeued=len(requeued))]
    assert known.verdict("reset-under-load-2ns", STOCK_6_1, failure).status is Status.KNOWN
    plain = [Failure(FailureKind.NOT_RECOVERED, message.split(";")[0], code="not-live")]
    assert known.verdict("reset-under-load-2ns", STOCK_6_1, plain).status is Status.FAIL
    assert kmsg.requeued_note([]) == "" and kmsg.requeued_lines([]) == []


def test_the_writes_the_bug_stalls_after_live_are_part_of_it() -> None:
    # the stall detector sees the same mechanism from the other side: after the reset that
    # requeued, no write completes while the load waits; alone it shows no requeue
    requeued = kmsg.instability(DMESG, PREVIOUS, LAST, lambda: kmsg.parse_requeues(TRACE))
    assert requeued is not None
    stalled = Failure(FailureKind.SLOW, "no write completed on nvme0 for 30.8s after it was "
                      "live again (25.6s), while its load was writing: more than 5s",
                      code="io-stalled")
    both = [*_unstable(requeued), stalled]
    assert known.verdict("reset-under-load", STOCK_6_1, both).status is Status.KNOWN
    assert known.verdict("bus-master-off", STOCK_6_1, both).status is Status.KNOWN
    assert known.verdict("reset-under-load", STOCK_6_1, [stalled]).status is Status.FAIL


def test_an_io_error_counts_what_the_reset_before_it_requeued() -> None:
    t = Timeline()
    t.add("state", "nvme0 live", 100.0)
    t.add("requeued", "16 request(s) by a reset (3.0s kernel uptime)", 101.02)
    t.add("state", "nvme0 resetting", 101.0)
    t.add("state", "nvme0 live", 101.1)
    t.add("requeued", "32 request(s) by a reset (5.0s kernel uptime)", 102.98)  # seen late
    t.add("state", "nvme0 resetting", 103.1)
    t.add("state", "nvme0 connecting", 103.2)
    errors = ("103.300000 fio: io_u error on file /dev/nvme0n1: Input/output error: read "
              "offset=4096, buflen=4096\n103.400000 fio: io_u error on file /dev/nvme0n1: "
              "Input/output error: write offset=8192, buflen=4096\n")
    io_error = Failure(FailureKind.IO_ERROR, "the load saw: job load: error EIO", errors,
                       code="io-error")
    found = with_requeues(io_error, t)
    assert found.requeued == 32 and found.message.endswith("had requeued 32 request(s)")
    # its requeues logged a little after its first error (the clocks differ): still its own
    t.add("requeued", "8 request(s) by a reset (5.4s kernel uptime)", 103.35)
    assert with_requeues(io_error, t).requeued == 40
    # its first error came before that reset: the one before it requeued 16
    early = io_error.evidence.replace("103.300000", "101.500000")
    assert with_requeues(replace(io_error, evidence=early), t).requeued == 16
    # no reset before it, no stamped error, or another kind of failure: as it was
    assert with_requeues(replace(io_error, evidence=errors.replace("103.", "99.")),
                         t).requeued == 0
    assert with_requeues(replace(io_error, evidence="EIO"), t) == replace(io_error,
                                                                          evidence="EIO")
    hang = Failure(FailureKind.HANG, "no write", errors, code="io-stuck")
    assert with_requeues(hang, t) is hang
