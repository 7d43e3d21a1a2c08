"""The kernel-log watch, against logs made by hand: where a recovery leaves the log, what
counts as trouble after it, and what the requeue trace adds."""

from __future__ import annotations

from harness.reading.kmsg import Requeue
from harness.recovery.logwatch import KernelLogWatch

BOOT = "[    1.000000] nvme nvme0: pci function 0000:00:04.0\n"
RESET = "[   10.000000] nvme nvme0: resetting controller\n"
TIMEOUT = "[   12.500000] nvme nvme0: I/O 7 QID 2 timeout, reset controller\n"


class Log:
    def __init__(self, text: str = BOOT) -> None:
        self.text = text
        self.requeues: list[Requeue] = []

    def watch(self) -> KernelLogWatch:
        return KernelLogWatch(lambda: self.text, lambda: self.text.splitlines()[-1],
                              lambda: self.requeues)


def test_nothing_is_judged_before_a_recovery() -> None:
    log = Log(BOOT + TIMEOUT)
    assert log.watch().instability() is None


def test_trouble_after_the_recovery_is_found_with_what_the_reset_requeued() -> None:
    log = Log(BOOT + RESET)
    watch = log.watch()
    watch.recovered()
    assert watch.stable_from == 10.0 and watch.previous_recovery == 0.0
    assert watch.instability() is None
    log.text += TIMEOUT
    log.requeues = [Requeue(10.2, "nvme0n1", 2048), Requeue(13.0, "nvme0n1", 8)]
    found = watch.instability()
    assert found is not None and found.trouble == (TIMEOUT.strip(),)
    assert [r.at for r in found.requeued] == [10.2]  # before the trouble only


def test_a_second_recovery_moves_the_mark_on() -> None:
    log = Log(BOOT + RESET + TIMEOUT)
    watch = log.watch()
    watch.recovered()
    assert watch.stable_from == 12.5 and watch.instability() is None
    watch.recovered()
    assert watch.previous_recovery == 12.5


def test_since_and_reset_logged() -> None:
    log = Log(BOOT + "[   11.000000] nvme nvme0: I/O 3 QID 1 timeout, aborting\n")
    watch = log.watch()
    assert watch.since(5.0) == ["[   11.000000] nvme nvme0: I/O 3 QID 1 timeout, aborting"]
    assert not watch.reset_logged(5.0)  # an abort alone is not a reaction to silence
    log.text += TIMEOUT
    assert watch.reset_logged(5.0) and not watch.reset_logged(13.0)


def test_requeued_since_recovery() -> None:
    log = Log(BOOT + RESET)
    log.requeues = [Requeue(9.0, "nvme0n1", 1), Requeue(10.5, "nvme0n1", 2)]
    watch = log.watch()
    assert len(watch.requeued_since_recovery()) == 2
    watch.recovered()
    assert [r.sector for r in watch.requeued_since_recovery()] == [2]


def test_a_hang_after_recoveries_counts_what_the_last_recovery_and_later_resets_requeued(
        ) -> None:
    log = Log(BOOT + RESET)
    log.requeues = [Requeue(3.0, "nvme0n1", 1), Requeue(9.0, "nvme0n1", 2),
                    Requeue(12.0, "nvme0n1", 3)]
    watch = log.watch()
    watch.recovered(at=5.0)
    watch.recovered(at=10.0)
    # the reset that led to the recovery at 10 s, and one since; not the one before 5 s
    assert [r.sector for r in watch.requeued_by_recent_resets()] == [2, 3]
    assert [r.sector for r in watch.requeued_since_recovery()] == [3]


def _line(at: float, text: str) -> str:
    return f"[{at:12.6f}] {text}\n"


def test_a_soak_finds_trouble_anywhere_since_its_mark_and_names_the_reset_before_it() -> None:
    # three quiet recoveries at 20, 21 and 22 s (sysfs resets log only their queue count),
    # then a timeout at 40 s, after a reset before the last recovery that requeued two
    # requests; a reset two recoveries before requeued one, which is not the one to blame
    log = Log(BOOT + _line(15.0, "nvme nvme0: 1/0/0 default/read/poll queues"))
    watch = log.watch()
    mark = watch.mark()
    log.requeues = [Requeue(19.9, "nvme0n1", 1), Requeue(21.9, "nvme0n1", 2),
                    Requeue(21.95, "nvme0n1", 3)]
    for at in (20.0, 21.0, 22.0):
        log.text += _line(at, "nvme nvme0: 1/0/0 default/read/poll queues")
        watch.recovered()
    assert watch.marks == [20.0, 21.0, 22.0]
    assert watch.instability(mark) is None
    assert [r.sector for r in watch.requeued_by_last_reset()] == [2, 3]
    log.text += _line(40.0, "nvme nvme0: I/O 5 QID 1 timeout, aborting")
    log.text += _line(41.0, "nvme nvme0: 1/0/0 default/read/poll queues")
    watch.recovered()  # a later recovery hides nothing of the segment
    found = watch.instability(mark)
    assert found is not None and len(found.trouble) == 1
    assert [r.sector for r in found.requeued] == [2, 3]
    assert watch.instability() is None  # the iteration's check sees after the last only
    # trouble before the mark belongs to no soak segment
    assert watch.instability(40.0) is None
