"""A real machine's settings, read before a run and put back after it: what differs is
written back, the PCI function first, and what still differs is said."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.target import settings


def restore_script(before: settings.Snapshot, now: settings.Snapshot, pci: str) -> str:
    """The fixes as the machine runs them, in their order, one after the other."""
    return "; ".join(f"{{ {fix}; }} 2>/dev/null" for _, fix in settings.changes(before, now, pci))


def differences(before: settings.Snapshot, now: settings.Snapshot, pci: str = "") -> list[str]:
    """What is not as it was found, one line each, as the machine says it."""
    return [what for what, _ in settings.changes(before, now, pci)]

PCI = "0000:00:04.0"
BEFORE = ("F\t/proc/sys/kernel/hung_task_timeout_secs\t120\n"
          "F\t/proc/sys/kernel/printk\t4 4 1 7\n"
          "F\t/sys/module/nvme/parameters/poll_queues\t0\n"
          "C\t0406\nD\tnvme\n")


def test_what_the_machine_printed_is_read() -> None:
    snap = settings.parse(BEFORE)
    assert snap.files["/proc/sys/kernel/printk"] == "4 4 1 7"
    assert (snap.command, snap.driver, snap.run_dir) == (0x406, "nvme", False)


def test_a_line_of_another_shape_is_refused() -> None:
    with pytest.raises(HarnessError, match="unexpected line"):
        settings.parse(BEFORE + "garbage\n")


def test_nothing_is_written_when_nothing_changed() -> None:
    snap = settings.parse(BEFORE)
    assert restore_script(snap, settings.parse(BEFORE), PCI) == ""
    assert differences(snap, settings.parse(BEFORE)) == []


def test_changed_files_bits_and_the_run_dir_are_put_back() -> None:
    before = settings.parse(BEFORE)
    now = settings.parse(BEFORE.replace("\t120\n", "\t10\n").replace("4 4 1 7", "7 4 1 7")
                         .replace("C\t0406", "C\t0402") + "R\t1\nT\t1\n")
    script = restore_script(before, now, PCI)
    assert "printf '%s' 120 > /proc/sys/kernel/hung_task_timeout_secs" in script
    assert "printf '%s' '4 4 1 7' > /proc/sys/kernel/printk" in script
    assert f"setpci -s {PCI} COMMAND=6:6" in script  # as found: both bits on, others untouched
    assert "rm -rf /run/nvmeh" in script and "poll_queues" not in script
    assert "umount /sys/kernel/tracing" in script
    assert len(differences(before, now)) == 5


def test_a_removed_function_is_rescanned_and_an_unbound_one_bound_first() -> None:
    before = settings.parse(BEFORE)
    gone = restore_script(before, settings.parse("F\t/proc/sys/kernel/printk\t4 4 1 7\n"),
                                   PCI)
    assert gone.startswith("{ echo 1 > /sys/bus/pci/rescan; }")
    unbound = restore_script(before, settings.parse(BEFORE.replace("D\tnvme\n", "")),
                                      PCI)
    assert unbound.startswith(f"{{ echo {PCI} > /sys/bus/pci/drivers/nvme/bind; }}")
    assert differences(before, settings.parse(BEFORE.replace("D\tnvme\n", ""))) == \
        ["PCI function bound to no driver, was nvme"]


def test_the_scripts_run_in_bash_against_a_fake_sysfs(tmp_path: Path) -> None:
    """The read script as bash runs it, over files standing in for the real ones."""
    kernel = tmp_path / "proc/sys/kernel"
    kernel.mkdir(parents=True)
    (kernel / "printk").write_text("4\t4\t1\t7\n")
    script = settings.read_script("nvme0n1", "nvme0", PCI).replace(
        " /proc/", f" {tmp_path}/proc/").replace(" /sys/", f" {tmp_path}/sys/")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    snap = settings.parse(out.stdout)
    assert snap.files == {f"{tmp_path}/proc/sys/kernel/printk": "4 4 1 7"}
    (kernel / "printk").write_text("7\t4\t1\t7\n")
    fix = restore_script(snap, settings.parse(subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True).stdout), PCI)
    subprocess.run(["bash", "-c", fix], check=True)
    assert (kernel / "printk").read_text() == "4 4 1 7"


def test_what_the_harness_left_running_is_killed_but_what_it_keeps() -> None:
    """Real processes, told apart by the tag in their environment as in the guest."""
    def start(tag: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["sleep", "60"], env={"NVMEH_TAG": tag, "PATH": "/usr/bin:/bin"})

    def shell(tag: str) -> subprocess.Popen[bytes]:  # a loop of builtins, as a sampler is
        return subprocess.Popen(["bash", "-c", f"export NVMEH_TAG={tag}; exec 3<> <(:); "
                                 "while :; do read -t 0.1 -u 3 _; done"])

    left, kept, foreground, other = start("bg7-123"), start("bg9-456"), start("12-789"), \
        subprocess.Popen(["sleep", "60"])
    loop, kept_loop = shell("bg8-1"), shell("bg9-456")
    try:
        subprocess.run(["bash", "-c", settings.kill_leftovers_script("bg9-456")], check=True,
                       timeout=30)
        assert left.wait(10) == -9 and loop.wait(10) == -9
        assert all(p.poll() is None for p in (kept, foreground, other, kept_loop))
    finally:
        for proc in (left, kept, foreground, other, loop, kept_loop):
            proc.kill()
            proc.wait()


def test_a_driver_built_from_sources_gives_way_to_the_stock_one_first() -> None:
    stock = BEFORE + "M\tnvme\tAAA\nM\tnvme_core\tBBB\n"
    built = BEFORE.replace("\t120\n", "\t10\n") + "M\tnvme\tCCC\nM\tnvme_core\tDDD\n"
    fixes = settings.changes(settings.parse(stock), settings.parse(built), PCI)
    assert len(fixes) == 2  # the stock driver first; the files after it has probed
    what, fix = fixes[0]
    assert "hung_task_timeout_secs" in fixes[1][1]
    assert what == "NVMe modules nvme CCC, nvme_core DDD, were nvme AAA, nvme_core BBB"
    assert fix.startswith("{ modprobe -r nvme nvme_core || ! [ -d /sys/module/nvme ]; } && "
                          "modprobe nvme && ")
    assert settings.changes(settings.parse(stock), settings.parse(stock), PCI) == []


def test_cpus_taken_offline_come_back_first_and_a_fault_module_is_unloaded() -> None:
    before = settings.parse(BEFORE + "O\t3\n")  # CPU 3 was offline before: it stays so
    now = settings.parse(BEFORE + "O\t1-3,5\nL\taer_inject\n")
    script = restore_script(before, now, PCI)
    assert script.startswith("{ echo 1 > /sys/devices/system/cpu/cpu1/online; "
                             "echo 1 > /sys/devices/system/cpu/cpu2/online; "
                             "echo 1 > /sys/devices/system/cpu/cpu5/online; }")
    assert "cpu3" not in script and script.endswith("{ rmmod aer_inject; } 2>/dev/null")
    assert differences(before, now) == ["CPU 1, 2, 5 offline, were online",
                                                 "module aer_inject left loaded"]
    # loaded by the user before the run: left loaded
    assert restore_script(settings.parse(BEFORE + "L\taer_inject\n"), now, PCI) \
        .count("rmmod") == 0


def test_a_cpu_list_is_read_as_the_kernel_writes_it() -> None:
    assert settings.cpu_list("") == frozenset()
    assert settings.cpu_list("0-2,7\n") == {0, 1, 2, 7}
    with pytest.raises(HarnessError, match="unreadable CPU list"):
        settings.cpu_list("one")


def test_a_detached_namespace_is_attached_again_to_its_own_controller() -> None:
    attached, detached = "A\tnvme1\t3\t[ 0]:0x1 [ 1]:0x3\n", "A\tnvme1\t3\t[ 0]:0x1\n"
    before, now = settings.parse(BEFORE + attached), settings.parse("C\t0000\nD\t\n" + detached)
    found = settings.changes(before, now, PCI)
    whats = [what for what, _ in found]
    # after the function is bound again: its controller must be there to attach to
    assert whats.index("namespace 3 detached from nvme1, was attached") > \
        whats.index("PCI function bound to no driver, was nvme")
    fix = dict(found)["namespace 3 detached from nvme1, was attached"]
    # to the controller still at the function's address, once it is live again
    assert fix.startswith('{ [ "$(cat /sys/class/nvme/nvme1/address 2>/dev/null)" = '
                          f"{PCI} ] || ")
    assert "nvme attach-ns /dev/nvme1 --namespace-id=3 " \
           "--controllers=$(cat /sys/class/nvme/nvme1/cntlid) && nvme ns-rescan /dev/nvme1" in fix
    for shell in ("bash", "sh"):
        subprocess.run([shell, "-n", "-c", fix], check=True)
    # detached when found: left alone
    assert differences(settings.parse(BEFORE + detached), settings.parse(BEFORE + detached)) \
        == []
    # attached when found and not known now (the controller cannot say): said, and tried
    assert differences(before, settings.parse(BEFORE)) == [
        "whether namespace 3 is attached to nvme1 could not be read (nvme list-ns), was attached"]


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_the_attachment_is_read_from_nvme_cli(tmp_path: Path, shell: str) -> None:
    """nvme list-ns prints the active namespace IDs in hex; a controller that does not answer,
    or a name that went to another drive's controller, leaves the attachment unknown rather
    than "detached"."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    nvme = bin_dir / "nvme"
    ctrl = tmp_path / "sys/class/nvme/nvme1"
    ctrl.mkdir(parents=True)

    def attachment(listed: str, exit_code: int = 0,
                   at: str = PCI) -> settings.Attachment | None:
        nvme.write_text(f"#!/bin/sh\nprintf '{listed}'\nexit {exit_code}\n")
        nvme.chmod(0o755)
        (ctrl / "address").write_text(at + "\n")
        script = settings.read_script("nvme1n1", "nvme1", PCI, nsid=11).replace(
            " /sys/", f" {tmp_path}/sys/")
        out = subprocess.run([shell, "-c", script], capture_output=True, text=True, check=True,
                             env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
        return settings.parse(out.stdout).attachment

    assert attachment("[   0]:0x1\\n[   1]:0xb\\n") == settings.Attachment("nvme1", 11, True)
    assert attachment("[   0]:0x1\\n") == settings.Attachment("nvme1", 11, False)
    assert attachment("") == settings.Attachment("nvme1", 11, False)
    assert attachment("NVMe status: INVALID_FIELD:\\n", exit_code=1) is None
    assert attachment("[   0]:0xb\\n", at="0000:05:00.0") is None


def test_a_queue_layout_left_changed_is_reset_after_the_parameters_are_back() -> None:
    layout = "Q\tnvme0\t4\tnvme0q0 nvme0q1 nvme0q2 \n"  # 2 default, 2 poll queues
    before = settings.parse(BEFORE + layout)
    assert before.queues == settings.Queues("nvme0", 4, ("nvme0q0", "nvme0q1", "nvme0q2"))
    # a poll queue more, where an interrupt-driven one was: the same count of contexts
    now = settings.parse(BEFORE.replace("poll_queues\t0", "poll_queues\t1") +
                         "Q\tnvme0\t4\tnvme0q0 nvme0q1\n")
    found = settings.changes(before, now, PCI)
    assert [what for what, _ in found] == [
        "/sys/module/nvme/parameters/poll_queues is '1', was '0'",
        "nvme0's queues: 4 blk-mq hardware queues, interrupts on nvme0q0 nvme0q1, were 4 "
        "blk-mq hardware queues, interrupts on nvme0q0 nvme0q1 nvme0q2"]
    reset = found[1][1]
    assert reset.startswith('[ "$(cat /sys/class/nvme/nvme0/address 2>/dev/null)" = '
                            f"{PCI} ] && echo 1 > /sys/class/nvme/nvme0/reset_controller && ")
    assert settings.changes(before, settings.parse(BEFORE + layout), PCI) == []
    # the controller gone, or its driver reloaded or bound again: its queues are new, and
    # looked at in the next pass
    assert differences(before, settings.parse(BEFORE)) == []
    reloaded = settings.parse(BEFORE + "M\tnvme\tX\nQ\tnvme0\t2\tnvme0q0\n")
    assert len(settings.changes(settings.parse(BEFORE + "M\tnvme\tY\n" + layout), reloaded,
                                PCI)) == 1
    with pytest.raises(HarnessError, match="unreadable queue layout"):
        settings.parse("Q\tnvme0\tmany\t\n")


@pytest.mark.parametrize("multipath", [False, True])
def test_the_queue_layout_is_read_from_sysfs_and_the_interrupts(tmp_path: Path,
                                                                multipath: bool) -> None:
    ctrl = tmp_path / "sys/class/nvme/nvme1"
    (ctrl / "address").parent.mkdir(parents=True)
    (ctrl / "address").write_text(PCI + "\n")
    for hctx in range(3):
        (ctrl / ("nvme0c1n1" if multipath else "nvme1n1") / "mq" / str(hctx)).mkdir(parents=True)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/interrupts").write_text(
        " 24:  0  5  PCI-MSIX-0000:00:04.0   0-edge  nvme1q0\n"
        " 26:  9  0  PCI-MSIX-0000:00:04.0  10-edge  nvme1q10\n"
        " 25:  9  0  PCI-MSIX-0000:00:04.0   1-edge  nvme1q1\n"
        " 27:  1  0  PCI-MSIX-0000:00:05.0   1-edge  nvme11q1\n")
    script = settings.read_script("nvme1n1", "nvme1", PCI).replace(
        " /proc/", f" {tmp_path}/proc/").replace(" /sys/", f" {tmp_path}/sys/")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert settings.parse(out.stdout).queues == settings.Queues(
        "nvme1", 3, ("nvme1q0", "nvme1q1", "nvme1q10"))
    (ctrl / "address").write_text("0000:05:00.0\n")  # the name went to another drive's
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert settings.parse(out.stdout).queues is None
