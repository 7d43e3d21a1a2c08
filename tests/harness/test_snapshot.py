"""Snapshot start: restored VMs work at once, start clean, and snapshots follow their inputs."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import GuestUnreachable
from harness.guest.ssh import Guest, SSHTarget
from harness.machine.lab import Lab
from harness.machine.topology import Topology


def test_restored_vm_is_ready_at_once(lab: Lab, artifacts: Path) -> None:
    with lab.vm(Topology(), artifacts) as vm:
        assert vm.boot_mode == "restore"
        # The login the snapshot had waiting on the relay port, taken over.
        assert vm.login_via == "relay"
        guest = vm.guest
        assert guest.run("cat /sys/class/nvme/nvme0/state").stdout == "live\n"
        assert guest.run("cat /sys/class/nvme/nvme0/serial").stdout.strip() == "nvmeh0"
        skew = float(guest.run("date +%s.%N").stdout) - time.time()
        assert abs(skew) < 2.0, f"guest clock is {skew:+.1f}s off after the restore"
        # The snapshot's login key was retired in favour of this VM's own key.
        assert vm.snapshot is not None
        stale = Guest(SSHTarget("127.0.0.1", vm.ssh_port, "root", vm.snapshot.client_key.pkey,
                                vm.host_key.pkey))
        with pytest.raises(GuestUnreachable, match="Authentication failed"):
            stale.connect(timeout=20)
        fresh = Guest(SSHTarget("127.0.0.1", vm.ssh_port, "root", vm.client_key.pkey,
                                vm.host_key.pkey))
        fresh.connect(timeout=20)
        assert fresh.run("echo ok").stdout == "ok\n"
        fresh.close()


def test_each_restored_vm_starts_clean(lab: Lab, artifacts: Path) -> None:
    mark = "dd if=/dev/nvme0n1 bs=512 count=1 iflag=direct 2>/dev/null | tr -d '\\0'"
    with lab.vm(Topology(), artifacts / "a") as first:
        first.guest.run("echo dirty > /root/flag && printf written | "
                        "dd of=/dev/nvme0n1 bs=512 conv=sync oflag=direct", check=True)
        assert first.guest.run(mark).stdout == "written"
        snap_state = first.snapshot.state if first.snapshot else None
        made = snap_state.stat().st_mtime_ns if snap_state else 0
    with lab.vm(Topology(), artifacts / "b") as second:
        assert second.boot_mode == "restore"
        assert second.snapshot is not None and second.snapshot.state == snap_state
        assert second.snapshot.state.stat().st_mtime_ns == made, "the snapshot was remade"
        assert second.guest.run(mark).stdout == ""
        assert second.guest.run("test -e /root/flag").exit_code == 1


@pytest.mark.parametrize("topology, mode", [
    (Topology.build(controllers=2, namespaces=["256M:4096"], io_queues=2), "restore"),
    (Topology.build(namespaces=2), "cold"),
])
def test_controllers_come_back_in_order_or_boot_cold(lab: Lab, artifacts: Path,
                                                     topology: Topology, mode: str) -> None:
    with lab.vm(topology, artifacts) as vm:
        assert vm.boot_mode == mode and vm.login_via == "relay"
        for i, ctrl in enumerate(topology.controllers):
            g = vm.guest
            assert g.run(f"cat /sys/class/nvme/nvme{i}/serial").stdout.strip() == f"nvmeh{i}"
            assert g.run(f"cat /sys/class/nvme/nvme{i}/state").stdout == "live\n"
            bs = ctrl.namespaces[0].block_size
            assert g.run(f"cat /sys/block/nvme{i}n1/queue/logical_block_size").stdout == \
                f"{bs}\n"


def test_no_snapshot_boots_cold(lab: Lab, artifacts: Path) -> None:
    with lab.vm(Topology(), artifacts, snapshots=False) as vm:
        assert vm.boot_mode == "cold" and vm.snapshot is None
        assert vm.guest.run("cat /sys/class/nvme/nvme0/state").stdout == "live\n"


def test_a_guest_without_the_relay_port_logs_in_over_tcp(lab: Lab, artifacts: Path) -> None:
    """A kernel without virtio_console (here: the module refused) still gets a working VM,
    from a snapshot as well: its snapshot holds no relay session, and the login uses TCP."""
    if "virtio_console" in lab.image.kernel.builtin:  # 6.12 builds it in: it cannot be refused
        lab = Lab(replace(lab.config, kernel="debian:6.1"))
    topology = Topology.build(kernel_args="module_blacklist=virtio_console")
    with lab.vm(topology, artifacts) as vm:
        assert vm.login_via == "tcp"
        assert vm.snapshot is None or vm.snapshot.relay_greeting is None
        assert vm.guest.run("cat /sys/class/nvme/nvme0/state").stdout == "live\n"
        assert vm.guest.run("ls /sys/class/virtio-ports 2>/dev/null | wc -l").stdout == "0\n"


def test_a_snapshot_whose_waiting_session_fails_is_made_again(lab: Lab, artifacts: Path) -> None:
    with lab.vm(Topology(), artifacts / "a") as vm:
        snap = vm.snapshot
    assert snap is not None and snap.relay_greeting is not None
    # Not what the saved server sent: the restored VM's login fails on it.
    (snap.path / "relay_greeting").write_bytes(b"SSH-1.0-broken\r\n")
    with pytest.raises(GuestUnreachable, match=r"login over the relay port failed.*discarded"), \
            lab.vm(Topology(), artifacts / "b"):
        pass
    assert not snap.path.exists()
    with lab.vm(Topology(), artifacts / "c") as again:
        assert again.boot_mode == "restore" and again.login_via == "relay"
        assert again.guest.run("echo ok").stdout == "ok\n"
