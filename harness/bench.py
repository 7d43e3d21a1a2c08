"""``python -m harness bench``: where a VM's time goes, measured on this machine.

Figures are medians over repeated runs; each says how many runs it used.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from harness import snapshot
from harness.lab import Lab
from harness.topology import Topology

SSH_SAMPLES = 50


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    runs: int
    samples: tuple[float, ...] = field(repr=False)


@dataclass(frozen=True)
class BenchResult:
    accel: str
    kernel: str
    topology: str
    figures: tuple[Figure, ...]

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"accelerator": self.accel, "kernel": self.kernel,
                                  "topology": self.topology}
        for f in self.figures:
            out[f.name] = round(f.value, 4)
            out[f"{f.name}_runs"] = f.runs
        return out

    def table(self) -> str:
        lines = [f"accelerator: {self.accel}", f"kernel: {self.kernel}",
                 f"topology: {self.topology}"]
        for f in self.figures:
            lines.append(f"{f.name:22} {f.value:10.3f} {f.unit:3} (median of {f.runs}; "
                         f"min {min(f.samples):.3f}, max {max(f.samples):.3f})")
        return "\n".join(lines)


def _figure(name: str, unit: str, samples: list[float]) -> Figure:
    return Figure(name, statistics.median(samples), unit, len(samples), tuple(samples))


def _time_to_ready(lab: Lab, topology: Topology, snapshots: bool,
                   phases: dict[str, list[float]]) -> float:
    """VM start until an SSH command has returned (snapshots made beforehand don't count)."""
    vm = lab.vm(topology, name="bench", snapshots=snapshots)
    t0 = time.monotonic()
    with vm:
        vm.guest.run("true", check=True)
        took = time.monotonic() - t0
        for name, at in vm.boot_phases:
            phases.setdefault(f"{vm.boot_mode}.{name}", []).append(at)
        return took


def run(lab: Lab, topology: Topology, runs: int = 3) -> BenchResult:
    image = lab.image  # built before any timing starts
    phases: dict[str, list[float]] = {}
    boots = [_time_to_ready(lab, topology, False, phases) for _ in range(runs)]
    figures = [_figure("boot_to_ready_s", "s", boots)]
    if snapshot.unsupported_reason(topology) is None:
        restores = [_time_to_ready(lab, topology, True, phases) for _ in range(runs)]
        figures.append(_figure("restore_to_ready_s", "s", restores))
    rtts: list[float] = []
    with lab.vm(topology, name="bench") as vm:
        for _ in range(SSH_SAMPLES):
            t1 = time.monotonic()
            vm.guest.run("true", check=True)
            rtts.append((time.monotonic() - t1) * 1000)
    figures.append(_figure("ssh_rtt_ms", "ms", rtts))
    # Where a start's time goes: seconds from QEMU's start to the end of each phase.
    figures += [_figure(f"phase.{name}_s", "s", samples) for name, samples in phases.items()]
    return BenchResult(str(lab.accel), f"{image.kernel.spec} ({image.kernel.release})",
                       str(topology), tuple(figures))
