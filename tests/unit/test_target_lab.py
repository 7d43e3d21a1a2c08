"""Which scenarios a real machine can carry, decided from what it reported before any runs,
and the options that name it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.build import kernels
from harness.errors import HarnessError
from harness.recovery import scenarios
from harness.recovery.runner import skip_reason
from harness.target import build as target_build
from harness.target.machine import Facts, TargetConfig, TargetLab, _oacs, boot_parameters


def lab(power_cmd: str | None = None, cpus: int = 2,
        cmdline: str = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro") -> TargetLab:
    found = TargetLab(TargetConfig.parse("ssh://root@lab7", "/dev/nvme1n1", None, power_cmd))
    found._facts = Facts("6.1.0-27-amd64", cpus, cmdline, "CONFIG_FTRACE=y\n", "nvme1",
                         "0000:03:00.0", "eui.0025385b71b0a1c2", ())
    return found


def reason(name: str, target: TargetLab) -> str | None:
    return skip_reason(target, scenarios.get(name))


def test_the_guest_side_scenarios_run_on_a_machine_that_has_what_they_need() -> None:
    for name in ("reset-under-load", "reset-storm", "flr-under-load", "pci-remove-rescan",
                 "rescan-during-reset", "admin-during-reset", "reset-under-load-2cpu"):
        assert reason(name, lab()) is None, name


def test_the_other_recovery_paths_run_there_with_their_faults_made_in_the_kernel() -> None:
    """CPU hotplug without the backend slowed, AER errors from aer_inject, the queue count
    changed through the driver's parameters (on one namespace)."""
    booted = lab(cpus=4, cmdline="ro nvme.write_queues=2 nvme.poll_queues=2")
    for name in ("cpu-offline-under-load", "cpu-offline-under-load-4cpu", "aer-under-load",
                 "queue-count-under-load"):
        assert reason(name, booted) is None, name


@pytest.mark.parametrize("name", ["stall-timeout", "hot-remove", "vm-pause", "media-error",
                                  "critical-warning", "suspend-under-load"])
def test_a_host_side_scenario_is_skipped_with_what_it_needs(name: str) -> None:
    assert "host side (QMP" in (reason(name, lab()) or "")


def test_a_power_cut_needs_a_power_command() -> None:
    assert "--power-cmd" in (reason("power-loss", lab()) or "")
    assert reason("power-loss", lab(power_cmd="ipmitool chassis power cycle")) is None


def test_a_shape_the_machine_lacks_is_said() -> None:
    assert "a target gives one" in (reason("reset-under-load-2ctrl", lab()) or "")
    assert "a target gives one" in (reason("reset-under-load-2ns", lab()) or "")
    assert "nvme.write_queues=2 nvme.poll_queues=2" in (reason("queue-count-under-load", lab())
                                                        or "")
    assert "needs 2 CPUs; the target has 1" in (reason("reset-under-load-2cpu", lab(cpus=1))
                                                or "")
    assert "nvme_core.io_timeout=5" in (reason("bus-master-off", lab()) or "")
    booted = lab(cmdline="ro nvme_core.io_timeout=5 nvme_core.admin_timeout=5")
    assert reason("bus-master-off", booted) is None
    assert "CONFIG_FAULT_INJECTION_DEBUG_FS" in (reason("fi-status", lab()) or "")


def test_namespace_churn_needs_a_controller_that_manages_namespaces() -> None:
    manages, does_not = lab(), lab()
    manages._facts = dataclasses.replace(manages.facts, oacs=0x5e)
    does_not._facts = dataclasses.replace(does_not.facts, oacs=0x17)
    assert reason("ns-churn-under-load", manages) is None
    assert reason("ns-churn-under-load", does_not) == (
        "detaches and attaches /dev/nvme1n1's namespace: nvme1 does not manage namespaces "
        "(OACS 0x17, bit 3 clear)")
    assert "OACS could not be read" in (reason("ns-churn-under-load", lab()) or "")
    # two controllers of one subsystem: a single-port drive has one
    assert "a target gives one" in (reason("ns-churn-during-reset", manages) or "")


def test_the_controllers_oacs_is_read_from_nvme_cli() -> None:
    assert _oacs("vid       : 0x1b36\noacs      : 0x12a\nacl       : 3\n") == 0x12a
    assert _oacs("vid       : 0x1b36\n") is None


def test_its_options_are_checked() -> None:
    with pytest.raises(HarnessError, match="--device"):
        TargetConfig.parse("ssh://root@lab7", None, None)
    with pytest.raises(HarnessError, match="--power-cmd is empty"):
        TargetConfig.parse("ssh://root@lab7", "/dev/nvme1n1", None, " ")


def test_what_the_machine_offers_for_building_a_driver_is_read() -> None:
    release = "6.1.0-27-amd64"
    has = target_build.parse_toolchain(
        release, "headers=/usr/src/linux-headers-6.1.0-27-amd64\nmake=/usr/bin/make\n"
                 "identity=0123456789abcdef\n")
    assert has.lacking() is None and has.identity == "0123456789abcdef"
    bare = target_build.parse_toolchain(release, "make=\n")
    assert f"no headers for its kernel {release}" in (bare.lacking() or "")
    assert target_build.parse_toolchain(release, "headers=/x\nmake=\n").lacking() == "no make"


def test_a_driver_without_headers_there_or_a_known_kernel_here_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Makefile").write_text("obj-m += nvme.o\n")
    (tmp_path / "pci.c").write_text("")
    monkeypatch.setattr(kernels, "debian_release", lambda spec: f"{spec[7:]}.0-9-amd64")
    found = TargetLab(TargetConfig.parse("ssh://root@lab7", "/dev/nvme1n1", None,
                                         nvme_src=tmp_path))
    found._facts = Facts("6.1.0-1-custom", 2, "ro", "", "nvme1", "0000:03:00.0", "eui.1", (),
                         target_build.Toolchain("6.1.0-1-custom"))
    with pytest.raises(HarnessError) as err:
        found.driver  # noqa: B018
    assert "no headers for its kernel 6.1.0-1-custom" in str(err.value)
    assert "debian:6.1: 6.1.0-9-amd64" in str(err.value)  # what it could have built for
    assert "install its headers there (Debian: linux-headers-6.1.0-1-custom" in str(err.value)


def test_a_built_driver_gets_the_parameters_the_machine_booted_with() -> None:
    cmdline = ("BOOT_IMAGE=/vmlinuz ro nvme.poll_queues=2 nvme-core.io_timeout=5 "
               "nvme_core.admin_timeout=5 nvme_tcp.x=1 quiet")
    assert boot_parameters(cmdline, "nvme.ko") == ["poll_queues=2"]
    assert boot_parameters(cmdline, "nvme-core.ko") == ["io_timeout=5", "admin_timeout=5"]
