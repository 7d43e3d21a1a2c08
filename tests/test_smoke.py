"""The smoke scenario: the controller comes up live, survives a reset, and fio verifies.

The first member of the NVMe scenario suite (``tox -e nvme``); the recovery scenarios build on
the same fixtures.
"""

from __future__ import annotations

import pytest

from harness.guest import fio
from harness.guest.nvme import Controller, controllers
from harness.guest.ssh import Guest


def test_controller_is_live_and_not_the_root_disk(guest: Guest) -> None:
    ctrl = Controller(guest, "nvme0")
    assert ctrl.state == "live"
    assert ctrl.namespaces() == ["nvme0n1"]
    mounts = guest.run("cat /proc/mounts", check=True).stdout
    assert "nvme" not in mounts, f"the device under test is mounted:\n{mounts}"
    assert guest.run("findmnt -n -o FSTYPE /", check=True).stdout.strip() == "overlay"


def test_reset_then_fio_verify(guest: Guest) -> None:
    ctrl = Controller(guest, "nvme0")
    ctrl.reset()
    samples = ctrl.wait_state("live", timeout=60)
    assert samples[-1].state == "live"
    result = fio.run_job(guest, "verify", filename="/dev/nvme0n1", size="16M", bs="4k",
                         iodepth=8, numjobs=2, rw="randwrite", seed=1234, timeout=300)
    assert result.ok, result.failures
    assert result.write_bytes == 2 * (16 << 20)
    assert result.read_bytes == 2 * (16 << 20), "the verify phase did not read everything back"
    assert ctrl.state == "live"


@pytest.mark.nvme(controllers=2, namespaces=["256M", "128M:4096"], io_queues=2, cpus=2,
                  memory="768M")
def test_topology_marker(guest: Guest) -> None:
    ctrls = controllers(guest)
    assert [c.name for c in ctrls] == ["nvme0", "nvme1"]
    assert guest.run("nproc", check=True).stdout.strip() == "2"
    for ctrl in ctrls:
        assert ctrl.state == "live"
        names = ctrl.namespaces()
        assert len(names) == 2
        sizes = [int(guest.run(f"cat /sys/block/{n}/size", check=True).stdout) * 512
                 for n in names]
        blocks = [int(guest.run(f"cat /sys/block/{n}/queue/logical_block_size",
                                check=True).stdout) for n in names]
        assert sorted(zip(sizes, blocks, strict=True)) == [(128 << 20, 4096), (256 << 20, 512)]
        # max_ioqpairs=2 with 2 CPUs: two I/O queues, each a blk-mq hardware context.
        hctx = guest.run(f"ls /sys/block/{names[0]}/mq", check=True).stdout.split()
        assert len(hctx) == 2
        # Each controller sits behind its own PCIe root port (so it can be hot-removed).
        path = guest.run(f"readlink -f /sys/class/nvme/{ctrl.name}/device", check=True).stdout
        assert path.count("/0000:") == 2, path
