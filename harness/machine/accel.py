"""Pick the accelerator: KVM only where it really works, else TCG.

On some hosts /dev/kvm exists but is a paravirtual module (kvm_pvm) on which a stock kernel
hangs in its decompressor; a CPU without vmx/svm has no hardware virtualisation either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput

ACCELS = ("kvm", "tcg")


@dataclass(frozen=True)
class Accel:
    name: str  # "kvm" or "tcg"
    reason: str  # why it was chosen, for reports

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def kvm_problem(cpuinfo: str, dev_kvm: Path = Path("/dev/kvm"),
                sys_module: Path = Path("/sys/module")) -> str | None:
    """Why KVM is not usable here, or None when it is."""
    if not dev_kvm.exists():
        return "/dev/kvm does not exist"
    if not os.access(dev_kvm, os.R_OK | os.W_OK):
        return "/dev/kvm is not accessible (add yourself to the kvm group)"
    if (sys_module / "kvm_pvm").exists():
        return "/dev/kvm is the paravirtual kvm_pvm module, on which stock kernels hang"
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines()
                  if line.startswith("flags")), [])
    if "vmx" not in flags and "svm" not in flags:
        return "the CPU has no vmx/svm flag"
    return None


def choose(requested: str | None = None) -> Accel:
    """``requested`` (from ``--accel``) wins; otherwise KVM when usable, else TCG."""
    if requested is not None:
        if requested not in ACCELS:
            raise BadInput(f"unknown accelerator {requested!r}: choose one of {', '.join(ACCELS)}")
        return Accel(requested, "requested with --accel")
    problem = kvm_problem(Path("/proc/cpuinfo").read_text())
    if problem is None:
        return Accel("kvm", "hardware virtualisation available")
    return Accel("tcg", f"KVM unusable: {problem}")
