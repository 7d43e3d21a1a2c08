"""A target file: a lab machine and its namespace in one file a lab hands out, read as
strictly as the options, which win over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BadInput, HarnessError
from harness.target.address import Address
from harness.target.machine import TargetConfig
from harness.target.targetfile import is_target_file, read

LAB7 = ('target = "ssh://root@lab7:2222"\ndevice = "/dev/nvme1n1"\n'
        'power-cmd = "ipmitool -H lab7-bmc chassis power cycle"\n')


def write(tmp_path: Path, text: str) -> str:
    (tmp_path / "lab7.toml").write_text(text)
    return str(tmp_path / "lab7.toml")


def test_the_file_names_the_machine_its_namespace_and_its_power(tmp_path: Path) -> None:
    config = TargetConfig.parse(write(tmp_path, LAB7), None, None)
    assert config.address == Address("root", "lab7", 2222)
    assert config.device == "/dev/nvme1n1"
    assert config.power_cmd == "ipmitool -H lab7-bmc chassis power cycle"
    assert config.destroy_data_on is None


def test_options_given_win_over_the_file(tmp_path: Path) -> None:
    config = TargetConfig.parse(write(tmp_path, LAB7), "/dev/nvme2n1", "/dev/nvme2n1",
                                power_cmd="pdu 7 cycle")
    assert (config.device, config.destroy_data_on, config.power_cmd) == \
        ("/dev/nvme2n1", "/dev/nvme2n1", "pdu 7 cycle")


def test_only_a_toml_name_is_a_file() -> None:
    assert is_target_file("lab7.toml") and is_target_file("~/labs/lab7.toml")
    assert not is_target_file("ssh://root@lab7") and not is_target_file("lab7")


@pytest.mark.parametrize("text, why", [
    ('target = "ssh://root@lab7"\ndevices = "/dev/nvme1n1"\n', "unknown key 'devices'"),
    ('target = "ssh://root@lab7"\ndevice = 1\n', "device must be a string in quotes"),
    ('device = "/dev/nvme1n1"\n', 'no target = "ssh://USER@HOST[:PORT]"'),
    ("target = ssh://root@lab7\n", "not TOML"),
])
def test_a_wrong_file_is_refused_in_one_line_naming_it(tmp_path: Path, text: str,
                                                        why: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as err:
        read(Path(path))
    assert str(err.value).startswith(f"--target {path}: ") and why in str(err.value)
    assert "\n" not in str(err.value)


def test_a_file_missing_or_with_a_bad_address_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"--target .*/none\.toml: cannot read it"):
        TargetConfig.parse(str(tmp_path / "none.toml"), None, None)
    path = write(tmp_path, 'target = "ssh://lab7"\ndevice = "/dev/nvme1n1"\n')
    with pytest.raises(BadInput, match=rf"^{path}: bad --target 'ssh://lab7'"):
        TargetConfig.parse(path, None, None)
    without = write(tmp_path, 'target = "ssh://root@lab7"\n')
    with pytest.raises(HarnessError, match=r"needs --device .* \(or device = \.\.\. in "):
        TargetConfig.parse(without, None, None)
