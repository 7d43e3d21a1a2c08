from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.machine import accel

VMX = "processor: 0\nflags\t\t: fpu vme vmx sse\n"
NOVMX = "processor: 0\nflags\t\t: fpu vme sse\n"


@pytest.fixture
def kvm_dev(tmp_path: Path) -> Path:
    dev = tmp_path / "kvm"
    dev.write_text("")
    return dev


def test_kvm_usable_with_hardware_flag(kvm_dev, tmp_path):
    assert accel.kvm_problem(VMX, kvm_dev, tmp_path / "sys") is None


def test_pvm_kvm_is_refused(kvm_dev, tmp_path):
    (tmp_path / "sys" / "kvm_pvm").mkdir(parents=True)
    assert "kvm_pvm" in (accel.kvm_problem(VMX, kvm_dev, tmp_path / "sys") or "")


def test_no_vmx_flag_is_refused(kvm_dev, tmp_path):
    assert "no vmx/svm" in (accel.kvm_problem(NOVMX, kvm_dev, tmp_path / "sys") or "")


def test_missing_dev_kvm(tmp_path):
    assert "does not exist" in (accel.kvm_problem(VMX, tmp_path / "nope", tmp_path) or "")


def test_override_and_bad_name():
    assert accel.choose("tcg").name == "tcg"
    with pytest.raises(BadInput, match="unknown accelerator 'xen'"):
        accel.choose("xen")
