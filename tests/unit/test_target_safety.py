"""The harness refuses a real machine's disk that holds data or is in use, and overwrites one
that merely holds data only when the user named it in --destroy-data-on.

The probe outputs in data/target are lsblk and wipefs 2.38 output: real-*.txt as captured on a
machine (loop devices, one mounted, one swap, no udev), the others the same JSON shapes with
NVMe names and the contents each case needs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.errors import BadInput, HarnessError
from harness.target.safety import (
    SECTIONS,
    Finding,
    Probe,
    check,
    findings,
    parse_probe,
    probe_command,
)

DATA = Path(__file__).parent / "data" / "target"
WHERE = "ssh://root@lab1"


def _probe(name: str, *edits: tuple[str, str]) -> Probe:
    text = (DATA / f"{name}.txt").read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    return parse_probe(text)


def _refusal(device: str, probe: Probe, destroy_data_on: str | None = None) -> str:
    with pytest.raises(BadInput) as e:
        check(device, probe, destroy_data_on, WHERE)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_a_blank_namespace_passes_without_the_flag() -> None:
    probe = _probe("clean")
    assert probe.signatures == ()  # wipefs 2.38 prints an empty list, not nothing
    assert findings("/dev/nvme1n1", probe) == []
    assert check("/dev/nvme1n1", probe, None, WHERE) == []
    assert check("/dev/nvme1n1", probe, "/dev/nvme1n1", WHERE) == []


def test_an_old_wipefs_printing_nothing_is_a_blank_disk() -> None:
    probe = _probe("clean", ('{\n   "signatures": [\n\n   ]\n}\n', ""))
    assert probe.signatures == ()
    assert findings("/dev/nvme1n1", probe) == []


def test_the_root_disk_is_refused_even_with_the_flag() -> None:
    found = findings("/dev/nvme0n1", _probe("clean"))
    assert Finding("mounted at /boot/efi (nvme0n1p1)", overridable=False) in found
    assert Finding("mounted at / (nvme0n1p2)", overridable=False) in found
    assert _refusal("/dev/nvme0n1", _probe("clean"), "/dev/nvme0n1") == (
        "refusing /dev/nvme0n1 on ssh://root@lab1: mounted at /boot/efi (nvme0n1p1); "
        "mounted at / (nvme0n1p2)")


def test_a_mounted_partition_is_refused_even_with_the_flag() -> None:
    probe = _probe("mounted")
    assert findings("/dev/nvme1n1", probe) == [
        Finding("mounted at /mnt/data (nvme1n1p1)", overridable=False),
        Finding("a gpt partition table", overridable=True),
        Finding("an ext4 file system signature", overridable=True),
        Finding("partition nvme1n1p1", overridable=True),
    ]
    for flag in (None, "/dev/nvme1n1"):
        assert _refusal("/dev/nvme1n1", probe, flag) == (
            "refusing /dev/nvme1n1 on ssh://root@lab1: mounted at /mnt/data (nvme1n1p1)")


def test_swap_is_refused_even_with_the_flag() -> None:
    probe = _probe("swap")
    assert Finding("swap in use", overridable=False) in findings("/dev/nvme1n1", probe)
    assert not any(f.what.startswith("mounted") for f in findings("/dev/nvme1n1", probe))
    assert _refusal("/dev/nvme1n1", probe, "/dev/nvme1n1") == (
        "refusing /dev/nvme1n1 on ssh://root@lab1: swap in use")


@pytest.mark.parametrize("edits", [
    [('"[SWAP]"', "null")],  # lsblk did not say so: /proc/swaps does
    [("/dev/nvme1n1p1      ", "/dev/nvme0n1p1      ")],  # /proc/swaps did not: lsblk does
])
def test_swap_is_seen_by_either_source(edits: list[tuple[str, str]]) -> None:
    found = findings("/dev/nvme1n1", _probe("swap", *edits))
    assert Finding("swap in use", overridable=False) in found


def test_swap_elsewhere_is_not_this_device_s() -> None:
    probe = _probe("swap", ('"[SWAP]"', "null"), ("/dev/nvme1n1p1      ", "/dev/nvme0n1p9      "))
    assert Finding("swap in use", overridable=False) not in findings("/dev/nvme1n1", probe)


def test_a_partitioned_disk_needs_the_exact_flag() -> None:
    probe = _probe("gpt-ext4")
    expected = [
        Finding("a gpt partition table", overridable=True),
        Finding("an ext4 file system signature", overridable=True),
        Finding("partition nvme1n1p1", overridable=True),
    ]
    assert findings("/dev/nvme1n1", probe) == expected
    assert _refusal("/dev/nvme1n1", probe) == (
        "refusing /dev/nvme1n1 on ssh://root@lab1: a gpt partition table; "
        "an ext4 file system signature; partition nvme1n1p1; "
        "pass --destroy-data-on /dev/nvme1n1 to let the harness overwrite it")
    assert check("/dev/nvme1n1", probe, "/dev/nvme1n1", WHERE) == expected
    assert _refusal("/dev/nvme1n1", probe, "/dev/nvme2n1") == (
        "--destroy-data-on names /dev/nvme2n1, but the device under test is /dev/nvme1n1")
    assert _refusal("/dev/nvme1n1", probe, "nvme1n1").startswith("--destroy-data-on names")


def test_the_flag_naming_another_device_is_refused_even_for_a_blank_one() -> None:
    assert _refusal("/dev/nvme1n1", _probe("clean"), "/dev/nvme0n1") == (
        "--destroy-data-on names /dev/nvme0n1, but the device under test is /dev/nvme1n1")


def test_a_table_only_wipefs_saw_counts() -> None:
    # No udev on the machine: lsblk knows no PTTYPE or FSTYPE, wipefs reads the disk itself.
    probe = _probe("gpt-ext4", ('"pttype": "gpt"', '"pttype": null'),
                   ('"fstype": "ext4"', '"fstype": null'))
    assert probe.signatures == ("gpt", "gpt", "PMBR")
    assert findings("/dev/nvme1n1", probe) == [
        Finding("a gpt partition table", overridable=True),
        Finding("partition nvme1n1p1", overridable=True),
    ]


def test_an_lvm_member_needs_the_flag() -> None:
    probe = _probe("lvm")
    assert findings("/dev/nvme1n1", probe) == [
        Finding("an LVM2_member signature", overridable=True),
        Finding("an xfs file system signature", overridable=True),
        Finding("lvm holder vg0-data", overridable=True),
    ]
    assert _refusal("/dev/nvme1n1", probe).endswith(
        "pass --destroy-data-on /dev/nvme1n1 to let the harness overwrite it")


def test_a_mounted_logical_volume_is_refused_even_with_the_flag() -> None:
    probe = _probe("lvm", ('"fstype": "xfs",\n               "pttype": null,\n'
                           '               "mountpoint": null',
                           '"fstype": "xfs",\n               "pttype": null,\n'
                           '               "mountpoint": "/srv"'))
    assert _refusal("/dev/nvme1n1", probe, "/dev/nvme1n1") == (
        "refusing /dev/nvme1n1 on ssh://root@lab1: mounted at /srv (vg0-data)")


def test_a_raid_member_needs_the_flag() -> None:
    probe = _probe("raid")
    expected = [
        Finding("a linux_raid_member signature", overridable=True),
        Finding("an ext4 file system signature", overridable=True),
        Finding("raid1 holder md0", overridable=True),
    ]
    assert findings("/dev/nvme1n1", probe) == expected
    assert check("/dev/nvme1n1", probe, "/dev/nvme1n1", WHERE) == expected
    assert _refusal("/dev/nvme2n1", probe).startswith(
        "refusing /dev/nvme2n1 on ssh://root@lab1: a linux_raid_member signature")


def test_a_disk_sharing_its_controller_with_the_root_needs_the_flag() -> None:
    probe = _probe("shared-controller")
    assert probe.root == "/dev/nvme0n1p2"  # findmnt's [/@] (a btrfs subvolume) cut off
    found = [Finding("its controller nvme0 also holds the root file system "
                     "(/dev/nvme0n1p2 on nvme0n1)", overridable=True)]
    assert findings("/dev/nvme0n2", probe) == found
    assert _refusal("/dev/nvme0n2", probe) == (
        "refusing /dev/nvme0n2 on ssh://root@lab1: its controller nvme0 also holds the root "
        "file system (/dev/nvme0n1p2 on nvme0n1); "
        "pass --destroy-data-on /dev/nvme0n2 to let the harness overwrite it")
    assert check("/dev/nvme0n2", probe, "/dev/nvme0n2", WHERE) == found
    assert findings("/dev/nvme1n1", probe) == []  # a controller of its own


def test_the_root_found_by_its_source_alone() -> None:
    # A container's lsblk may show no "/" mountpoint: findmnt's SOURCE still names it.
    probe = _probe("shared-controller", ('"mountpoint": "/"', '"mountpoint": null'))
    assert [f.what for f in findings("/dev/nvme0n2", probe)] == [
        "its controller nvme0 also holds the root file system (/dev/nvme0n1p2 on nvme0n1)"]


def test_a_multipath_head_shares_every_controller_it_has() -> None:
    probe = _probe("shared-controller", ("nvme0n2 nvme0", "nvme0n2 nvme1 nvme0"))
    assert [f.what for f in findings("/dev/nvme0n2", probe)] == [
        "its controller nvme0 also holds the root file system (/dev/nvme0n1p2 on nvme0n1)"]
    probe = _probe("shared-controller", ("nvme0n1 nvme0", "nvme0n1 nvme0 nvme1"),
                   ("nvme0n2 nvme0", "nvme0n2 nvme1 nvme0"))
    assert [f.what for f in findings("/dev/nvme0n2", probe)] == [
        "its controllers nvme0, nvme1 also hold the root file system "
        "(/dev/nvme0n1p2 on nvme0n1)"]


def test_what_is_on_the_namespace_through_another_controller_counts() -> None:
    # A dual-port drive with Linux's multipath off: the namespace is nvme1n1 and nvme2n1 (one
    # wwid); its file system is mounted through the other.
    probe = _probe("two-paths")
    assert _refusal("/dev/nvme2n1", probe, "/dev/nvme2n1") == (
        "refusing /dev/nvme2n1 on ssh://root@lab1: mounted at /mnt/data (nvme1n1p1)")
    unmounted = _probe("two-paths", ('"mountpoint": "/mnt/data"', '"mountpoint": null'))
    assert [f.what for f in findings("/dev/nvme2n1", unmounted)] == [
        "a gpt partition table", "an ext4 file system signature", "partition nvme2n1p1",
        "partition nvme1n1p1"]
    # another namespace's wwid: none of its business
    other = _probe("two-paths", ("nvme2n1 eui.6479a74a3020018c", "nvme2n1 eui.00000000000001"))
    assert "nvme1n1p1" not in _refusal("/dev/nvme2n1", other)


def test_a_missing_device_is_refused_even_with_the_flag() -> None:
    probe = _probe("real-missing")
    assert probe.signatures == ()  # wipefs failed on it: its section is empty
    assert findings("/dev/nvme9n9", probe) == [Finding("not present", overridable=False)]
    assert _refusal("/dev/nvme9n9", probe, "/dev/nvme9n9") == (
        "refusing /dev/nvme9n9 on ssh://root@lab1: not present")


def test_what_is_not_a_namespace_is_refused_even_with_the_flag() -> None:
    probe = _probe("real-loop-mounted")
    assert probe.swaps == ("/dev/loop1",)
    assert probe.root == "/dev/vda"
    assert findings("/dev/loop0", probe) == [
        Finding("not an NVMe namespace (lsblk: loop0, type loop)", overridable=False),
        Finding("mounted at /tmp/tgt-mnt (loop0)", overridable=False),
        Finding("an ext4 file system signature", overridable=True),
    ]
    assert findings("/dev/loop1", probe)[:2] == [
        Finding("not an NVMe namespace (lsblk: loop1, type loop)", overridable=False),
        Finding("swap in use", overridable=False),
    ]
    part = findings("/dev/nvme1n1p1", _probe("gpt-ext4"))
    assert part[0] == Finding("not an NVMe namespace (lsblk: nvme1n1p1, type part)", False)
    assert _refusal("/dev/nvme1n1p1", _probe("gpt-ext4"), "/dev/nvme1n1p1").startswith(
        "refusing /dev/nvme1n1p1 on ssh://root@lab1: not an NVMe namespace")


@pytest.mark.parametrize(("edit", "complaint"), [
    (("--- swaps\n", ""), "printed no swaps section"),
    (("--- lsblk\n", "--- lsblk\nlsblk: unknown column: PATH\n"), "lsblk output is not"),
    (('"blockdevices"', '"devices"'), "lsblk output is not"),
    (('"type": "disk"', '"type": 3'), "lsblk output is not"),
    (('"signatures"', '"sigs"'), "wipefs output is not"),
])
def test_malformed_output_is_a_one_line_error(edit: tuple[str, str], complaint: str) -> None:
    with pytest.raises(HarnessError, match=complaint) as e:
        _probe("gpt-ext4", edit)
    assert "\n" not in str(e.value)


def test_the_probe_command_is_valid_sh_and_quotes_the_device() -> None:
    command = probe_command("/dev/nvme0n1; rm -rf /")
    assert "'/dev/nvme0n1; rm -rf /'" in command
    assert len(command.encode()) < 4000
    for shell in ("bash", "sh"):
        assert subprocess.run([shell, "-n", "-c", command]).returncode == 0


def _tool(name: str) -> bool:
    return any((Path(d) / name).exists() for d in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"))


@pytest.mark.skipif(not all(_tool(t) for t in ("lsblk", "wipefs", "findmnt")),
                    reason="needs util-linux")
def test_the_probe_runs_here_and_prints_every_section_for_a_missing_device() -> None:
    env = {**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"}
    out = subprocess.run(["sh", "-c", probe_command("/dev/nvme9n9")], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stdout.splitlines() if line.startswith("--- ")] == \
        [f"--- {s}" for s in SECTIONS]
    probe = parse_probe(out.stdout)
    assert probe.signatures == ()
    assert findings("/dev/nvme9n9", probe) == [Finding("not present", overridable=False)]


def test_the_probe_reads_controllers_off_sysfs(tmp_path: Path) -> None:
    # A namespace's device link leads to its controller; a multipath head's to its subsystem,
    # which holds its controllers and the head itself.
    block, ctrl, subsys = tmp_path / "block", tmp_path / "ctrl", tmp_path / "nvme-subsys1"
    for d in (ctrl / "nvme0", subsys / "nvme1", subsys / "nvme2", subsys / "nvme1n1"):
        d.mkdir(parents=True)
    for name, target in (("nvme0n1", ctrl / "nvme0"), ("nvme0n2", ctrl / "nvme0"),
                         ("nvme1n1", subsys), ("nvme1c1n1", subsys / "nvme1")):
        (block / name).mkdir(parents=True)
        (block / name / "device").symlink_to(target)
    (block / "sda").mkdir()
    script = probe_command("/dev/nvme0n1")
    part = script[script.index("echo '--- controllers'"):script.index("echo '--- root'")]
    out = subprocess.run(["sh", "-c", part.replace("/sys/block", str(block))],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert sorted(out.splitlines()[1:]) == [
        "nvme0n1 nvme0", "nvme0n2 nvme0", "nvme1c1n1 nvme1", "nvme1n1 nvme1 nvme2"]


def test_the_probe_reads_each_namespace_s_wwid_but_a_path_s(tmp_path: Path) -> None:
    block = tmp_path / "block"
    for name, wwid in (("nvme1n1", "eui.01"), ("nvme2n1", "eui.01"), ("nvme3c3n1", "eui.02")):
        (block / name).mkdir(parents=True)
        (block / name / "wwid").write_text(wwid + "\n")
    (block / "nvme4n1").mkdir()  # no wwid file (an old kernel)
    script = probe_command("/dev/nvme1n1")
    part = script[script.index("echo '--- wwids'"):]
    out = subprocess.run(["sh", "-c", part.replace("/sys/block", str(block))],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.splitlines() == ["--- wwids", "nvme1n1 eui.01", "nvme2n1 eui.01"]
