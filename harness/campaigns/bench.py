"""``python -m harness bench``: where a VM's time goes, measured on this machine.

Figures are medians over repeated runs; each says how many runs it used.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.guest import fio
from harness.guest.nvme import Controller
from harness.guest.ssh import Background, Guest
from harness.machine import hostcpu, snapshot
from harness.machine.lab import Lab
from harness.machine.topology import Topology
from harness.recovery import scenarios, soak
from harness.recovery.runner import run_iteration
from harness.recovery.soak import SoakPlan
from harness.util import percentile

SOAK_S = 600.0  # of faults: long enough for checkpoints to count as they do in an hour
SSH_SAMPLES = 50
RESETS = 50
# The load for reset timing and the IOPS figure: 4k random writes, queue depth 16.
LOAD = ("--name=load --filename=/dev/nvme0n1 --rw=randwrite --bs=4k --iodepth=16 --direct=1 "
        "--ioengine=libaio --size=256M --randrepeat=0")


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    runs: int
    samples: tuple[float, ...] = field(repr=False)
    stat: str = "median"


@dataclass(frozen=True)
class BenchResult:
    accel: str
    kernel: str
    topology: str
    figures: tuple[Figure, ...]
    # What went wrong in the guest while it was measured (the figures stay, with this beside)
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"accelerator": self.accel, "kernel": self.kernel,
                                  "topology": self.topology}
        for f in self.figures:
            out[f.name] = round(f.value, 4)
            out[f"{f.name}_runs"] = f.runs
        out["warnings"] = list(self.warnings)
        return out

    def table(self) -> str:
        lines = [f"accelerator: {self.accel}", f"kernel: {self.kernel}",
                 f"topology: {self.topology}"]
        for f in self.figures:
            lines.append(f"{f.name:30} {f.value:10.3f} {f.unit:5} ({f.stat} of {f.runs}; "
                         f"min {min(f.samples):.3f}, max {max(f.samples):.3f})")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _figure(name: str, unit: str, samples: list[float]) -> Figure:
    return Figure(name, statistics.median(samples), unit, len(samples), tuple(samples))


def _reset_figures(name: str, samples: list[float]) -> list[Figure]:
    return [Figure(f"{name}_p50", percentile(samples, 50), "ms", len(samples), tuple(samples),
                   "p50"),
            Figure(f"{name}_p99", percentile(samples, 99), "ms", len(samples), tuple(samples),
                   "p99")]


def reset_times_ms(guest: Guest, count: int, controller: str = "nvme0") -> list[float]:
    """Time ``count`` sysfs resets back to ``live``, each timed inside the guest."""
    ctrl = Controller(guest, controller)
    times = []
    for _ in range(count):
        fault, live = ctrl.reset_and_wait(bound=60)
        times.append((live - fault) * 1000)
    return times


def _load(guest: Guest) -> Background:
    return guest.background(f"exec fio {LOAD} --time_based --runtime=3600 --output=/dev/null")


def stranded_io(guest: Guest, disk: str = "nvme0n1", wait: float = 5.0) -> int:
    """Requests still in flight on ``disk`` ``wait`` seconds after its load stopped: a driver
    that recovered from its resets has none."""
    out = guest.run(f"i=0; while read -r r w < /sys/block/{disk}/inflight && "
                    f"[ $((r + w)) -gt 0 ] && [ $i -lt {int(wait * 10)} ]; do sleep 0.1; "
                    "i=$((i + 1)); done; echo $((r + w))", timeout=wait + 30, check=True)
    return int(out.stdout.split()[-1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


def _iterations(lab: Lab, runs: int, artifacts: Path) -> list[Figure]:
    """Whole seeded iterations of reset-under-load on the stock driver, as repro runs them:
    their wall time, and the verified resets an hour that makes."""
    scn = scenarios.get("reset-under-load")
    took, resets = [], 0
    for seed in range(1, runs + 1):
        result = run_iteration(lab, scn, seed, artifacts / f"iteration-seed{seed}")
        took.append(result.duration)
        resets += len(result.recovery_s) if result.passed else 0
    return [_figure("reset_under_load_iteration_s", "s", took),
            _figure("iteration_resets_per_hour", "resets/h", [3600 * resets / sum(took)])]


def _soak(lab: Lab, seconds: float, artifacts: Path) -> list[Figure]:
    """A soak of reset-under-load on the stock driver, as ``repro --soak`` runs it: the
    verified resets an hour it makes, all of its time counted (VM start, loads, checkpoints,
    the last verify pass). One soak: its faults are its many samples."""
    scn = scenarios.get("reset-under-load")
    plan = SoakPlan(seconds=seconds)
    result = run_iteration(lab, scn, 1, artifacts / "soak-seed1",
                           procedure=soak.procedure(scn, plan))
    if not result.passed:
        raise HarnessError(f"the benchmark's soak failed {plan.where()}: "
                           + "; ".join(map(str, result.failures)))
    return [_figure("soak_resets_per_hour", "resets/h", [3600 * plan.done / result.duration])]


def run(lab: Lab, topology: Topology, runs: int = 3, artifacts: Path | None = None,
        soak_s: float = SOAK_S) -> BenchResult:
    image = lab.image  # built before any timing starts
    phases: dict[str, list[float]] = {}
    cpu_before = hostcpu.host_cpu_times()
    boots = [_time_to_ready(lab, topology, False, phases) for _ in range(runs)]
    figures = [_figure("boot_to_ready_s", "s", boots)]
    if snapshot.unsupported_reason(topology) is None:
        restores = [_time_to_ready(lab, topology, True, phases) for _ in range(runs)]
        figures.append(_figure("restore_to_ready_s", "s", restores))
    # A noisy host makes every start slower: the figures are only comparable with this.
    figures.append(_figure("host_steal_during_starts_pct", "%", [
        100 * hostcpu.steal_share(cpu_before, hostcpu.host_cpu_times())]))
    rtts: list[float] = []
    warnings = []
    with lab.vm(topology, name="bench") as vm:
        guest = vm.guest
        for _ in range(SSH_SAMPLES):
            t1 = time.monotonic()
            guest.run("true", check=True)
            rtts.append((time.monotonic() - t1) * 1000)
        figures.append(_figure("ssh_rtt_ms", "ms", rtts))
        # IOPS first, on a controller no reset has touched yet: a driver that does not
        # recover from the resets below would leave nothing to measure.
        iops = []
        for _ in range(runs):
            res = fio.parse_json(guest.run(f"fio {LOAD} --time_based --runtime=10 "
                                           "--output-format=json", timeout=120,
                                           check=True).stdout)
            iops.append(sum(j.write_iops for j in res.jobs))
        figures.append(_figure("randwrite_4k_iops", "IOPS", iops))
        figures += _reset_figures("reset_recovery_ms", reset_times_ms(guest, RESETS))
        load = _load(guest)
        try:
            figures += _reset_figures("reset_recovery_loaded_ms", reset_times_ms(guest, RESETS))
        finally:
            load.kill()
        stranded = stranded_io(guest)
        if stranded:
            warnings.append(
                f"{stranded} request(s) still in flight on nvme0n1 5 s after the load under "
                f"the resets stopped: the driver did not recover from a reset under load (a "
                f"bug of {image.kernel.spec}'s driver? see known-bugs/ and `python -m harness "
                f"repro reset-under-load`)")
        assert vm.proc is not None
        figures.append(_figure("vm_rss_mib", "MiB", [rss_mib(vm.proc.pid)]))
    if artifacts is not None:  # where the iterations and the soak keep their logs
        figures += _iterations(lab, runs, artifacts)
        figures += _soak(lab, soak_s, artifacts)
    # Where a start's time goes: seconds from QEMU's start to the end of each phase.
    figures += [_figure(f"phase.{name}_s", "s", samples) for name, samples in phases.items()]
    return BenchResult(str(lab.accel), f"{image.kernel.spec} ({image.kernel.release})",
                       str(topology), tuple(figures), tuple(warnings))
