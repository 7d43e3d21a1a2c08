"""stall-timeout's guard that the stall reached the driver's I/O timeout reads only what the
kernel logged after the fault: the boot command line names the timeout too."""

from __future__ import annotations

from harness.reading import kmsg

BOOT = """\
[    0.000000] Command line: console=ttyS0 nvme_core.io_timeout=5 nvme_core.admin_timeout=5
[    0.041273] Kernel command line: console=ttyS0 nvme_core.io_timeout=5
[    4.898800] nvme nvme0: pci function 0000:01:00.0
[    4.999004] nvme nvme0: 1/0/0 default/read/poll queues
"""
TIMED_OUT_6_1 = "[   38.648128] nvme nvme0: I/O 272 QID 1 timeout, reset controller\n"
TIMED_OUT_6_12 = ("[   64.712003] nvme nvme0: I/O tag 262 (8106) opcode 0x2 (I/O Cmd) QID 1 "
                  "timeout, aborting req_op:READ(0) size:4096\n")


def test_the_boot_command_line_is_no_timeout() -> None:
    assert "timeout" in BOOT  # what the old guard took for one
    assert kmsg.io_timeouts(BOOT, 0.0) == []


def test_timeouts_after_the_mark_in_both_wordings() -> None:
    assert kmsg.io_timeouts(BOOT + TIMED_OUT_6_1, 10.0) == [TIMED_OUT_6_1.strip()]
    assert kmsg.io_timeouts(BOOT + TIMED_OUT_6_12, 10.0) == [TIMED_OUT_6_12.strip()]
    assert kmsg.io_timeouts(BOOT + TIMED_OUT_6_1, 40.0) == []  # before the fault
