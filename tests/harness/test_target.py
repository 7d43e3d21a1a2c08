"""``--target``: a VM started on its own plays a lab machine, reached only over SSH as a
user reaches one (their key in ~/.ssh, the machine's host key in their known_hosts, nothing
else), with an emulated NVMe drive under test."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.build import images
from harness.build.images import GuestImage
from harness.errors import EXIT_HARNESS, GuestPanic, VMDied
from harness.machine import bootcrash
from harness.machine.lab import Lab
from harness.machine.topology import Topology
from harness.machine.vm import VM
from harness.target import settings
from tests.harness.test_broken_drivers import _sources, patched
from tests.harness.test_cli import ROOT, assert_one_line_error, harness

DEVICE = "/dev/nvme0n1"
OVER_TCP = Topology.build(ssh_relay=False)  # reached as a machine is, on a TCP port


@dataclass
class LabMachine:
    vm: VM  # the harness's own handle on it: only to set up and to look, never the test path
    env: dict[str, str]  # a user whose ~/.ssh knows the machine
    target: str

    def repro(self, *args: str) -> tuple[int, str, str]:
        proc = harness("repro", *args, "--target", self.target, env=self.env, timeout=900)
        return proc.returncode, proc.stdout, proc.stderr + self.fate()

    def fate(self) -> str:
        """What became of the machine itself, as the VM's own check tells (its panic, or its
        QEMU's exit, with the console's tail), and QEMU's stderr; nothing while it runs and
        has not panicked: a failing test says why the machine went."""
        try:
            self.vm.check_alive()
        except (GuestPanic, VMDied) as exc:
            # QEMU's stale translation crashed the machine, not the driver (as the harness
            # tells of its own VMs): whatever the run said, it tested nothing. Its first
            # crash decides (a hung task, which some tests provoke, is none)
            crash = next((o for o in self.vm.oopses if o.kind != "hung_task"), None)
            if crash and (stale := bootcrash.stale_translation(crash, self.vm.accel.name)):
                pytest.skip(f"the lab machine crashed under QEMU: {stale}")
            stderr = self.vm.artifacts / "qemu-stderr.log"
            said = stderr.read_text(errors="replace")[-2000:] if stderr.exists() else ""
            return (f"\n--- the lab machine: {exc} ---\n{exc.detail}"
                    f"\n--- its QEMU's stderr ---\n{said}\n")
        return ""

    def start_repro(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "harness", "repro", *args, "--target",
                                 self.target], cwd=ROOT, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_for(self, command: str, timeout: float = 120) -> None:
        """Until ``command`` succeeds on the machine (looked at from the harness's own VM
        handle, not the run's)."""
        self.vm.guest.run(f"until {command}; do sleep 0.2; done", timeout=timeout, check=True)

    def settings(self) -> settings.Snapshot:
        script = settings.read_script("nvme0n1", "nvme0", self.pci_address(), nsid=1)
        return settings.parse(self.vm.guest.run(script, check=True).stdout)

    def pci_address(self) -> str:
        return self.vm.guest.run("basename $(readlink -f /sys/class/nvme/nvme0/device)",
                                 check=True).stdout.strip()


@contextlib.contextmanager
def lab_machine(lab: Lab, home: Path, topology: Topology = OVER_TCP,
                image: GuestImage | None = None) -> Iterator[LabMachine]:
    """A VM of ``lab`` (booting ``image`` if given) on its own, and a user whose ~/.ssh (in
    ``home``) knows it."""
    vm = (lab.vm(topology, home / "machine", name="labmachine") if image is None else
          VM(image, topology, lab.accel, qemu=lab.qemu, artifacts=home / "machine",
             name="labmachine"))
    with vm:
        ssh = home / ".ssh"
        ssh.mkdir(mode=0o700)
        vm.client_key.save(ssh / "id_ed25519")
        (ssh / "known_hosts").write_text(
            f"[127.0.0.1]:{vm.ssh_port} {vm.host_key.authorized_line()}")
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        yield LabMachine(vm, {**env, "HOME": str(home)}, f"ssh://root@127.0.0.1:{vm.ssh_port}")


@pytest.fixture(scope="module")
def machine(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabMachine]:
    with lab_machine(lab, tmp_path_factory.mktemp("user")) as found:
        yield found


def test_a_scenario_passes_on_a_target_and_leaves_it_as_found(machine: LabMachine) -> None:
    # settings the run changes, set apart from what the harness's own VMs use
    machine.vm.guest.run("sysctl -q -w kernel.hung_task_timeout_secs=123 && dmesg -n 4",
                         check=True)
    before = machine.settings()
    # named by a target file, as a lab hands machines out
    lab7 = Path(machine.env["HOME"]) / "lab7.toml"
    lab7.write_text(f'target = "{machine.target}"\ndevice = "{DEVICE}"\n')
    proc = harness("repro", "rescan-during-reset", "--seed", "3", "--target", str(lab7),
                   env=machine.env, timeout=900)
    code, out, err = proc.returncode, proc.stdout, proc.stderr
    assert code == 0 and "PASS" in out, out + err
    assert f"checking {DEVICE} on {machine.target}" in err, err  # the file's device
    assert "not as it was found" not in err, err
    after = machine.settings()
    assert after == before
    assert before.files["/proc/sys/kernel/hung_task_timeout_secs"] == "123"


def test_a_host_side_scenario_is_skipped_on_a_target_with_its_reason(
        machine: LabMachine) -> None:
    code, _, err = machine.repro("stall-timeout", "--seed", "1", "--device", DEVICE)
    assert code == EXIT_HARNESS and "skipped: " in err and "QMP" in err, err


def test_a_machine_whose_host_key_is_not_known_is_refused(machine: LabMachine,
                                                          tmp_path: Path) -> None:
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_bytes(
        (Path(machine.env["HOME"]) / ".ssh" / "id_ed25519").read_bytes())
    os.chmod(tmp_path / ".ssh" / "id_ed25519", 0o600)
    proc = harness("repro", "reset-under-load", "--seed", "1", "--target", machine.target,
                   "--device", DEVICE, env={**machine.env, "HOME": str(tmp_path)})
    assert_one_line_error(proc, "not in known_hosts")


def test_a_swap_signature_is_refused_and_swap_in_use_always(machine: LabMachine) -> None:
    guest = machine.vm.guest
    guest.run(f"mkswap {DEVICE}", check=True)
    try:
        code, _, err = machine.repro("reset-under-load", "--seed", "1", "--device", DEVICE)
        assert code == EXIT_HARNESS and "swap" in err and "--destroy-data-on" in err, err
        # named again, it is let through (to a scenario a target skips: nothing written)
        code, _, err = machine.repro("stall-timeout", "--seed", "1", "--device", DEVICE,
                                     "--destroy-data-on", DEVICE)
        assert code == EXIT_HARNESS and "skipped: " in err, err
        assert f"--destroy-data-on {DEVICE}: overwriting despite a swap signature" in err, err
        guest.run(f"swapon {DEVICE}", check=True)
        code, _, err = machine.repro("reset-under-load", "--seed", "1", "--device", DEVICE,
                                     "--destroy-data-on", DEVICE)
        assert code == EXIT_HARNESS and "swap in use" in err, err
    finally:
        guest.run(f"swapoff {DEVICE}; wipefs -a {DEVICE}", timeout=60)


def test_a_multipath_node_is_refused_with_what_to_do(
        lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    # a subsystem of several controllers (CMIC): Linux shows its namespace through a node of
    # the subsystem's, over a path per controller
    with lab_machine(lab, tmp_path_factory.mktemp("user"),
                     Topology.build(ssh_relay=False, subsystem=True)) as found:
        code, _, err = found.repro("reset-under-load", "--seed", "1", "--device", DEVICE)
    assert code == EXIT_HARNESS and "Traceback" not in err, err
    assert f"{DEVICE} on {found.target} is a multipath node of nvme-subsys0" in err, err
    assert "nvme_core.multipath=N" in err, err


def test_an_interrupted_run_leaves_the_machine_as_found(machine: LabMachine) -> None:
    before = machine.settings()
    run = machine.start_repro("rescan-during-reset", "--seed", "4", "--device", DEVICE)
    try:  # interrupted once the hung-task detector is set to report within 10 s
        machine.wait_for("[ $(cat /proc/sys/kernel/hung_task_timeout_secs) = 10 ]")
    finally:
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    assert run.returncode == 130 and "interrupted" in err, err
    assert machine.settings() == before
    assert machine.vm.guest.run("pgrep -x fio").exit_code == 1  # nothing writes on


def test_a_machine_that_stops_answering_fails_with_its_last_kernel_log_lines(
        lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    with lab_machine(lab, tmp_path_factory.mktemp("user")) as found:
        run = found.start_repro("reset-under-load", "--seed", "2", "--device", DEVICE)
        try:  # the scenario has begun: the load runs and a reset came back
            found.wait_for("[ $(dmesg | sed -n '/kernel log followed from here/,$p' | "
                           "grep -c 'default/read/poll queues') -ge 2 ]")
        finally:
            found.vm.kill()
            out, err = run.communicate(timeout=300)
    assert run.returncode == 1, out + err
    assert "FAIL: hang: the guest stopped answering during the scenario, with no panic in " \
        "its kernel log" in out, out
    assert "kernel log (last lines read):" in err and "default/read/poll queues" in err, err
    assert "is not as it was found" in err and "nothing checked or put back" in err, err


def test_power_loss_runs_on_a_target_with_a_power_command(
        lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The power command plays a PDU: it asks for the machine's power to be cut and given
    back (here the VM is killed and started again on its disks, at the same address, by this
    thread: a QEMU dies with the thread that started it)."""
    home = tmp_path_factory.mktemp("user")
    asked = home / "power-asked"
    command = f"touch {asked}; while [ -e {asked} ]; do sleep 0.1; done"
    with lab_machine(lab, home) as found:
        run = found.start_repro("power-loss", "--seed", "2", "--device", DEVICE,
                                "--power-cmd", command)
        cycles = []
        try:
            while run.poll() is None:
                if asked.exists():
                    found.vm.power_cycle()
                    cycles.append(found.vm.ssh_port)
                    asked.unlink()
                time.sleep(0.1)
        finally:
            out, err = run.communicate(timeout=300)
        assert run.returncode == 0 and "PASS" in out, out + err
        assert cycles == [int(found.target.rsplit(":", 1)[1])]  # once, at its address
        assert "nvmeh: kernel log followed from here" in found.vm.guest.run(
            "dmesg", check=True).stdout  # the new boot's log was followed too


# The faults that take the device away or silence it, and leave the most to put back (PCI
# command bits, a removed function, a rebound driver, CPUs offline, aer_inject loaded), and
# those made in the kernel there instead of by QEMU: the others run as rescan-during-reset
# does above (the whole list: docs/design.md, lab machines).
# (bus-master-off: the same command bits put back as mmio-off, left out for time)
THROUGH_A_TARGET = ["mmio-off", "pci-remove-rescan", "flr-under-load",
                    "cpu-offline-under-load", "aer-under-load", "queue-count-under-load",
                    "ns-churn-under-load"]
# nvme_core.multipath=N: the drive's controller is in a subsystem (QEMU attaches and detaches
# namespaces only there), whose namespace Linux would otherwise show through a multipath node
BOOT_ARGS = ("nvme_core.io_timeout=5", "nvme_core.admin_timeout=5", "nvme.write_queues=2",
             "nvme.poll_queues=2", "nvme_core.multipath=N")


@pytest.fixture(scope="module")
def booted_for_them(lab: Lab, tmp_path_factory: pytest.TempPathFactory) \
        -> Iterator[LabMachine]:
    """A machine of two CPUs booted with what those scenarios need on the kernel's command
    line (a target's arguments are not set at run time): short I/O timeouts for the
    silent-device ones, write and poll queues for the queue count's changes; its drive
    manages namespaces, and its link survives the reset of a fatal PCIe error."""
    with lab_machine(lab, tmp_path_factory.mktemp("user"),
                     Topology.build(ssh_relay=False, cpus=2, subsystem=True, link_speed="2.5",
                                    kernel_args=" ".join(BOOT_ARGS))) as found:
        yield found


@pytest.mark.parametrize("scenario", THROUGH_A_TARGET)
def test_a_guest_side_scenario_passes_through_a_target(booted_for_them: LabMachine,
                                                       scenario: str) -> None:
    machine = booted_for_them
    before = machine.settings()
    code, out, err = machine.repro(scenario, "--seed", "6", "--device", DEVICE)
    assert code == 0 and "PASS" in out, out + err
    # with the queue layout: queue-count-under-load's seed 6 leaves write_queues=0 set up
    assert machine.settings() == before


def test_a_namespace_left_detached_is_attached_again(booted_for_them: LabMachine) -> None:
    machine = booted_for_them
    before = machine.settings()
    assert before.attachment == settings.Attachment("nvme0", 1, True)
    run = machine.start_repro("rescan-during-reset", "--seed", "4", "--device", DEVICE)
    try:  # the scenario has begun; the namespace is detached as ns-churn-under-load does
        machine.wait_for("[ $(cat /proc/sys/kernel/hung_task_timeout_secs) = 10 ]")
        machine.vm.guest.run("nvme detach-ns /dev/nvme0 --namespace-id=1 "
                             "--controllers=$(cat /sys/class/nvme/nvme0/cntlid)", check=True)
    finally:
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    assert run.returncode == 130 and "interrupted" in err, err
    assert "not as it was found" not in err, err
    assert machine.settings() == before
    assert machine.vm.guest.run(f"test -b {DEVICE}").ok


def test_an_error_handler_that_stops_the_queues_is_caught_with_errors_from_aer_inject(
        booted_for_them: LabMachine, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No QEMU to raise the port's error: aer_inject makes up the non-fatal one on the machine,
    and the driver whose error_detected quiesces its queues for good is caught by it. The last
    test on this machine: the broken driver stays loaded."""
    machine = booted_for_them
    before = machine.settings()
    src = patched(_sources(tmp_path_factory, "debian:6.12"),
                  tmp_path_factory.mktemp("broken") / "host", "aer-nonfatal-quiesced.patch")
    code, out, err = machine.repro("aer-under-load", "--seed", "5", "--device", DEVICE,
                                   "--nvme-src", str(src))
    assert code == 1, out + err
    assert "--nvme-src" in err  # the reproduce line loads the same driver again
    assert re.search(r"FAIL: hang: load\S*: no write completed within 20s of the recovery",
                     out), out
    # The load's writes wait in the quiesced queues for good: fio cannot exit, the namespace
    # stays open, the broken driver cannot be unloaded. Said, with modprobe's own words.
    assert re.search(r"is not as it was found:\n  NVMe modules nvme \w+, nvme_core \w+, were "
                     r"nvme \w+, nvme_core \w+ \(modprobe: FATAL: Module nvme is in use\.\)",
                     err), err
    after = machine.settings()
    assert after.modules != before.modules
    assert dataclasses.replace(after, modules=before.modules) == before  # the rest put back


@pytest.fixture(scope="module")
def equipped(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabMachine]:
    """A machine as labs have them: its root made in the kernel's own Debian suite, with the
    kernel's headers and make, and fdisk, LVM and mdadm."""
    image = dataclasses.replace(
        lab.image, rootfs=images.lab_machine_rootfs(lab.image.kernel, lab.progress))
    with lab_machine(lab, tmp_path_factory.mktemp("user"),
                     Topology.build(ssh_relay=False, cpus=2), image) as found:
        yield found


NO_UDEV = "--config 'activation { udev_sync = 0 udev_rules = 0 }'"  # the machine runs no udev


def test_every_kind_of_data_on_the_device_is_refused(equipped: LabMachine) -> None:
    """Partitions, a file system, LVM and RAID, made by their own tools: refused until
    --destroy-data-on names the device; mounted, refused even then."""
    machine, guest = equipped, equipped.vm.guest

    def refused(*whats: str, always: bool = False) -> None:
        args = ("--device", DEVICE, *(["--destroy-data-on", DEVICE] if always else []))
        code, _, err = machine.repro("reset-under-load", "--seed", "1", *args)
        assert code == EXIT_HARNESS and f"refusing {DEVICE} on {machine.target}: " in err, err
        assert all(what in err for what in whats), err
        assert ("pass --destroy-data-on" in err) is not always, err

    try:
        guest.run(f"printf 'label: dos\\n,64M\\n' | sfdisk -q {DEVICE}", check=True)
        refused("a dos partition table", "partition nvme0n1p1")
        code, _, err = machine.repro("stall-timeout", "--seed", "1", "--device", DEVICE,
                                     "--destroy-data-on", DEVICE)  # let through: skipped there
        assert code == EXIT_HARNESS and "skipped: " in err, err
        assert "overwriting despite a dos partition table" in err, err
        guest.run(f"wipefs -qa {DEVICE} && blockdev --rereadpt {DEVICE}", check=True)

        guest.run(f"mkfs.ext4 -q -F {DEVICE}", check=True)
        refused("an ext4 file system signature")
        guest.run(f"mount {DEVICE} /mnt", check=True)
        refused("mounted at /mnt (nvme0n1)", always=True)
        guest.run(f"umount /mnt && wipefs -qa {DEVICE}", check=True)

        guest.run(f"pvcreate -qq {DEVICE} && vgcreate -qq nvmeh {DEVICE} && "
                  f"lvcreate -qq -y -L 16M -n lv nvmeh {NO_UDEV}", check=True)
        refused("an LVM2_member signature", "lvm holder nvmeh-lv")
        guest.run("mkfs.ext4 -q /dev/mapper/nvmeh-lv && mount /dev/mapper/nvmeh-lv /mnt",
                  check=True)
        refused("mounted at /mnt (nvmeh-lv)", always=True)
        guest.run(f"umount /mnt && vgremove -qq -ff nvmeh {NO_UDEV} && pvremove -qq {DEVICE}",
                  check=True)

        guest.run(f"mdadm --create /dev/md0 --run --quiet --level=1 --raid-devices=2 {DEVICE} "
                  "missing", check=True)
        refused("a linux_raid_member signature", "raid1 holder md0")
        guest.run(f"mdadm --stop /dev/md0 && mdadm --zero-superblock {DEVICE}", check=True)
    finally:
        guest.run(f"umount /mnt; mdadm --stop /dev/md0; vgremove -qq -ff nvmeh {NO_UDEV}; "
                  f"wipefs -qa {DEVICE}", timeout=60)


def test_a_machine_with_its_kernel_headers_builds_the_driver_itself(
        equipped: LabMachine, tmp_path_factory: pytest.TempPathFactory) -> None:
    """--nvme-src on a machine with its kernel's headers and make installed (the guest's root
    made in the kernel's own Debian suite, with its linux-headers package): compiled there,
    its compiler errors named in the user's files, the broken driver caught, the machine left
    as found and without the build."""
    found = equipped
    stock = _sources(tmp_path_factory, "debian:6.12")
    wrong = tmp_path_factory.mktemp("wrong") / "host"
    shutil.copytree(stock, wrong)
    with open(wrong / "core.c", "a") as fh:
        fh.write("\nstatic int broken(void) { return undeclared_thing; }\n")
    src = patched(stock, tmp_path_factory.mktemp("broken") / "host", "scan-hang.patch")
    before = found.settings()
    code, _, err = found.repro("rescan-during-reset", "--seed", "5", "--device", DEVICE,
                               "--nvme-src", str(wrong))
    assert code == EXIT_HARNESS and "Traceback" not in err, err
    assert f"does not compile on {found.target} for 6.12" in err, err
    assert f"{wrong}/core.c:" in err and "undeclared_thing" in err, err

    code, out, err = found.repro("rescan-during-reset", "--seed", "5", "--device", DEVICE,
                                 "--nvme-src", str(src))
    assert f"building the NVMe driver from {src} on {found.target}, against its" in err, err
    assert code == 1, out + err
    assert "FAIL: hang: the target's kernel reported a hung task" in out, out
    assert "nvme_scan_work" in out
    assert "not as it was found" not in err, err
    assert found.settings() == before
    assert found.vm.guest.run("ls -d /tmp/nvmeh-driver.*").exit_code != 0  # built, gone
