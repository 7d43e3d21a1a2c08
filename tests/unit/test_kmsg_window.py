"""Reading the kernel log on from a recovery: what counts as trouble afterwards."""

from __future__ import annotations

import pytest

from harness.reading import kmsg

LOG = """[   10.080635] nvme nvme0: 1/0/0 default/read/poll queues
[   11.068819] nvme nvme0: 1/0/0 default/read/poll queues
[   42.172578] nvme nvme0: I/O 522 QID 1 timeout, disable controller
[   42.218290] nvme nvme0: failed to mark controller live state
"""


def test_lines_after_a_mark_and_the_mark_itself():
    assert kmsg.last_stamp(LOG) == pytest.approx(42.218290)
    assert kmsg.last_stamp("") == 0.0
    assert [kmsg.stamp(ln) for ln in kmsg.lines_after(LOG, 11.068819)] == [42.172578, 42.21829]


@pytest.mark.parametrize(("line", "trouble"), [
    ("[ 1.0] nvme nvme0: I/O tag 12 (000c) opcode 0x1 (Write) QID 1 timeout, aborting", True),
    ("[ 1.0] nvme nvme0: I/O 192 QID 1 timeout, disable controller", True),
    ("[ 1.0] nvme nvme0: I/O 5 QID 1 timeout, reset controller", True),
    ("[ 1.0] nvme nvme0: controller is down; will reset: CSTS=0x2, PCI_STATUS=0x10", True),
    ("[ 1.0] nvme nvme0: Abort status: 0x0", True),
    ("[ 1.0] nvme nvme0: Removing after probe failure status: -19", True),
    ("[ 1.0] nvme nvme0: 2/0/1 default/read/poll queues", False),
    ("[ 1.0] critical medium error, dev nvme0n1, sector 8 op 0x0:(READ)", False),
    ("[ 1.0] Kernel command line: nvme_core.io_timeout=5", False),
])
def test_what_a_recovered_driver_must_not_print_again(line: str, trouble: bool):
    assert kmsg.is_recovery_trouble(line) is trouble
