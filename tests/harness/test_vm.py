"""The harness's own VM tests: guest session, QMP, reuse, and the detectors on real guests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.errors import CommandTimeout, GuestHang, GuestPanic, GuestUnreachable
from harness.guest.ssh import Guest
from harness.machine.lab import Lab
from harness.machine.qmp import Qmp
from harness.machine.topology import Topology
from harness.machine.vm import VM

_boot_ids: list[str] = []


def test_guest_run_returns_code_and_streams(guest: Guest) -> None:
    res = guest.run("echo out; echo err >&2; exit 3")
    assert (res.exit_code, res.stdout, res.stderr) == (3, "out\n", "err\n")
    assert guest.run("cat", stdin="fed through stdin").stdout == "fed through stdin"


def test_timeout_kills_the_command_and_its_children(guest: Guest) -> None:
    with pytest.raises(CommandTimeout, match="timed out after 2s"):
        guest.run("sleep 300 & setsid sleep 301 & echo started; wait", timeout=2)
    left = guest.run("pgrep -x sleep -a || true").stdout
    assert "300" not in left and "301" not in left, left


def test_background_command_and_kill(guest: Guest) -> None:
    bg = guest.background("for i in 1 2 3; do echo tick $i; sleep 0.2; done")
    res = bg.wait(30)
    assert res.exit_code == 0 and res.stdout.split("\n")[:3] == ["tick 1", "tick 2", "tick 3"]
    forever = guest.background("sleep 1000")
    assert forever.running
    forever.kill()
    assert not forever.running
    assert "1000" not in guest.run("pgrep -a sleep || true").stdout


def test_file_transfer(guest: Guest, tmp_path: Path) -> None:
    src = tmp_path / "up.bin"
    src.write_bytes(bytes(range(256)) * 64)
    guest.put(src, "/tmp/up.bin")
    assert guest.run("sha256sum /tmp/up.bin").stdout.split()[0] == \
        __import__("hashlib").sha256(src.read_bytes()).hexdigest()
    guest.get("/tmp/up.bin", tmp_path / "down.bin")
    assert (tmp_path / "down.bin").read_bytes() == src.read_bytes()


def test_qmp_sees_the_topology(qmp: Qmp) -> None:
    assert qmp.cmd("query-status")["status"] == "running"
    buses = qmp.cmd("query-pci")[0]["devices"]
    ports = [d for d in buses if d.get("qdev_id") == "rp0"]
    assert ports, "controller 0's root port is missing"
    behind = ports[0]["pci_bridge"]["devices"]
    assert [d["qdev_id"] for d in behind] == ["nvme0"]
    nodes = [b.get("inserted", {}).get("node-name") for b in qmp.cmd("query-block")]
    assert "nvme0n1-disk" in nodes


def test_vm_reused_for_equal_topology_first(vm: VM) -> None:
    _boot_ids.append(vm.guest.run("cat /proc/sys/kernel/random/boot_id").stdout)


def test_vm_reused_for_equal_topology_second(vm: VM) -> None:
    boot_id = vm.guest.run("cat /proc/sys/kernel/random/boot_id").stdout
    assert _boot_ids == [boot_id], "a healthy VM with the same topology was not reused"


def test_hung_task_is_detected_on_a_real_guest(vm: VM, qmp: Qmp) -> None:
    """Writeback stalled by a QMP throttle keeps dd's O_SYNC write in D state past the hung-task
    timeout. (Direct I/O would not do: blk_io_schedule wakes up every half timeout precisely
    to avoid this report.)"""
    guest = vm.guest
    guest.run("sysctl -qw kernel.hung_task_timeout_secs=2 kernel.hung_task_warnings=10",
              check=True)
    throttle = {k: 0 for k in ("bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr")}
    qdev = vm.namespace(0, 1).qdev
    qmp.cmd("block_set_io_throttle", id=qdev, **{**throttle, "bps": 8192})
    t0 = time.monotonic()
    try:
        # The report interrupts the command the harness is waiting for (24 s at 8 KiB/s).
        with pytest.raises(GuestHang, match=r"reported a hung task: INFO: task hung in .*dd if"):
            guest.run("dd if=/dev/zero of=/dev/nvme0n1 bs=64k count=3 oflag=sync", timeout=120)
        assert time.monotonic() - t0 < 20
    finally:
        qmp.cmd("block_set_io_throttle", id=qdev, **throttle)
        guest.run("sysctl -qw kernel.hung_task_timeout_secs=0")
    assert guest.run("true").ok  # each report interrupts one wait: the next command runs
    hung = [o for o in vm.take_oopses() if o.kind == "hung_task"]
    assert hung, f"no hung-task report; console tail:\n{vm.console.tail()}"
    assert hung[0].title.startswith("INFO: task hung in "), hung[0].title
    assert any("dd" in line and "blocked for more than" in line for line in hung[0].lines)


def test_panic_is_noticed_within_seconds(lab: Lab, artifacts: Path) -> None:
    with lab.vm(Topology(), artifacts) as vm:
        t0 = time.monotonic()
        with pytest.raises(GuestUnreachable):
            vm.guest.run("echo c > /proc/sysrq-trigger; sleep 600", timeout=600)
        with pytest.raises(GuestPanic, match="kernel panic: sysrq triggered crash"):
            vm.explain_lost_connection()
        assert time.monotonic() - t0 < 60, "the panic was noticed only at a timeout"
    assert not vm.scratch.exists()
    assert (artifacts / "console.log").read_text().count("Kernel panic - not syncing") == 1


def test_commands_see_a_clean_shell_each_time(guest: Guest) -> None:
    """Nothing a command does to its shell leaks into the next one."""
    assert guest.run("cd /tmp; X=1; set -e; exit 4").exit_code == 4
    res = guest.run('pwd; echo "x=${X-unset} c=${_nv_c-unset} n=${_nv_n-unset}"; false; echo on')
    assert res.stdout.split("\n")[:3] == ["/root", "x=unset c=unset n=unset", "on"], res.stdout
    multi = guest.run("printf 'a\\n'\nprintf 'é%s\\n' ü\nexit 0")
    assert (multi.exit_code, multi.stdout) == (0, "a\néü\n")
