"""Which scenarios a real machine can carry, decided from what it reported before any runs,
and the options that name it."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.recovery import scenarios
from harness.recovery.runner import skip_reason
from harness.target.machine import Facts, TargetConfig, TargetLab


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
    assert "needs 2 CPUs; the target has 1" in (reason("reset-under-load-2cpu", lab(cpus=1))
                                                or "")
    assert "nvme_core.io_timeout=5" in (reason("bus-master-off", lab()) or "")
    booted = lab(cmdline="ro nvme_core.io_timeout=5 nvme_core.admin_timeout=5")
    assert reason("bus-master-off", booted) is None
    assert "CONFIG_FAULT_INJECTION_DEBUG_FS" in (reason("fi-status", lab()) or "")


def test_its_options_are_checked() -> None:
    with pytest.raises(HarnessError, match="--device"):
        TargetConfig.parse("ssh://root@lab7", None, None)
    with pytest.raises(HarnessError, match="--power-cmd is empty"):
        TargetConfig.parse("ssh://root@lab7", "/dev/nvme1n1", None, " ")
