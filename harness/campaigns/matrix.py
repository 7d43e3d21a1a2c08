"""Scenarios by kernels: one table that says where the driver holds and where it breaks.

Each cell runs the scenario's seeded iterations (or soaks) on that kernel (the same seeds on
every kernel, so a difference between two columns is the kernel's doing; with several QEMUs, a
column is a kernel under one QEMU) and ends in one status:
PASS, FAIL (the driver misbehaved), KNOWN (a recorded kernel bug, see
:mod:`harness.recovery.known`), or ERROR (the harness could not test: the kernel would not
boot, QEMU failed, ...).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import report as report_mod
from harness.build import driver
from harness.campaigns import compare
from harness.campaigns.repro import lab_reproduce_command
from harness.errors import BadInput, HarnessError
from harness.machine.lab import Lab
from harness.reading.verdict import IterationResult, Status
from harness.recovery import known, soak
from harness.recovery.registry import Scenario, ScenarioSkipped
from harness.recovery.runner import run_iteration
from harness.recovery.soak import SoakPlan
from harness.report import ReportDir, RunRecord
from harness.target.machine import TargetLab

__all__ = ["Cell", "Status", "comparisons", "drivers", "exit_status", "run_cell", "table"]

STOCK = "stock"  # in --nvme-srcs: the kernel's own driver


def column(kernel: str, qemu: str | None = None, drv: str | None = None) -> str:
    """A column's name: the kernel, and the QEMU and the driver when the matrix has several."""
    return " ".join(p for p in (kernel, qemu, drv) if p is not None)


def drivers(spec: str) -> list[tuple[str, Path | None]]:
    """``--nvme-srcs``: comma-separated ``[NAME=]DIR`` or ``stock`` (the kernel's own driver),
    as (name, sources or None); a name defaults to the directory's. The first is the base the
    others are compared with."""
    out: list[tuple[str, Path | None]] = []
    for item in (i.strip() for i in spec.split(",")):
        if not item:
            continue
        name, _, where = item.rpartition("=")
        if where == STOCK and not name:
            out.append((STOCK, None))
            continue
        src = Path(where).expanduser()
        driver.check_source(src, "--nvme-srcs")
        out.append((name or src.resolve().name, src))
    if len(out) < 2:
        raise BadInput(f"--nvme-srcs {spec!r}: name two drivers or more, the base first "
                       "(DIR, NAME=DIR or stock)")
    names = [n for n, _ in out]
    if len(set(names)) < len(names):
        raise BadInput(f"--nvme-srcs {spec!r}: two drivers named alike; name them (NAME=DIR)")
    return out


@dataclass
class Cell:
    kernel: str  # the column: the kernel, and the QEMU when a matrix has several
    release: str
    scenario: str
    status: Status = Status.PASS
    seeds: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    figures: list[compare.SeedFigures] = field(default_factory=list)  # per seed
    driver: str | None = None  # the driver's name, when a matrix compares several

    @property
    def recovery_s(self) -> list[float]:
        return [r for f in self.figures for r in f.recovery_s]

    @property
    def where(self) -> str:
        """The column without the driver: the kernel, and the QEMU when there are several."""
        return self.kernel.removesuffix(f" {self.driver}") if self.driver else self.kernel

    @property
    def recovery_ms_p50(self) -> float | None:
        return statistics.median(self.recovery_s) * 1000 if self.recovery_s else None

    @property
    def recovery_ms_max(self) -> float | None:
        return max(self.recovery_s) * 1000 if self.recovery_s else None

    def text(self) -> str:
        rec = f" {self.recovery_ms_p50:.0f}ms" if self.recovery_ms_p50 is not None else ""
        return f"{self.status.value}{rec}" if self.status in (Status.PASS, Status.KNOWN) \
            else self.status.value

    def as_dict(self) -> dict[str, object]:
        return {"kernel": self.kernel, "release": self.release, "scenario": self.scenario,
                "status": self.status.value.lower(), "seeds": self.seeds,
                "recovery_ms_p50": self.recovery_ms_p50, "recovery_ms_max": self.recovery_ms_max,
                "reasons": self.reasons, "artifacts": self.artifacts,
                "duration_s": round(self.duration_s, 1),
                "per_seed": [{"seed": f.seed, "recovery_s": f.recovery_s,
                              "io_resume_s": f.io_resume_s, "back_after_s": f.back_after_s}
                             for f in self.figures]}


def run_cell(lab: Lab | TargetLab, scn: Scenario, seeds: Sequence[int], root: Path,
             report: Callable[[str], None], report_dir: ReportDir | None = None,
             name: str | None = None, drv: str | None = None,
             soaks: Callable[[], SoakPlan] | None = None) -> Cell:
    """``name``: the cell's column (default: the lab's kernel); ``drv``: its driver's name
    when a matrix compares several (the column's last word); ``soaks``: a soak per seed
    instead of an iteration, each planned by it."""
    cell = Cell(name or ("target" if isinstance(lab, TargetLab) else lab.config.kernel), "?",
                scn.name, driver=drv)
    t0, started, detail = time.monotonic(), time.time(), ""
    try:
        if soaks is not None and scn.soak is None:
            raise ScenarioSkipped(f"{scn.name} has no soak")
        cell.release = (lab.facts.release if isinstance(lab, TargetLab)
                        else lab.image.kernel.release)
        for seed in seeds:
            result = run_iteration(lab, scn, seed, root / f"{scn.name}-seed{seed}",
                                   procedure=soak.procedure(scn, soaks()) if soaks else None)
            cell.seeds.append(seed)
            cell.figures.append(compare.SeedFigures(
                seed, list(result.recovery_s), list(result.io_resume_s),
                [j.back_after for j in result.throughput if j.back_after is not None]))
            cell.artifacts.append(str(result.artifacts))
            if not result.passed:
                _record_failure(cell, result, known.driver_of(lab))
                break
    except ScenarioSkipped as exc:
        cell.status = Status.SKIP
        cell.reasons.append(str(exc))
    except HarnessError as exc:
        cell.status = Status.ERROR
        cell.reasons.append(str(exc))
        detail = exc.detail.rstrip()  # such as a compiler's output: "below" is here
    cell.duration_s = time.monotonic() - t0
    report(f"{cell.kernel} {scn.name}: {cell.text()}"
           + (f" ({'; '.join(cell.reasons)})" if cell.reasons else "")
           + (f"\n{detail}" if detail else ""))
    if report_dir is not None:
        report_dir.add(_record(lab, scn, cell, seeds, started))
    return cell


def _record(lab: Lab | TargetLab, scn: Scenario, cell: Cell, seeds: Sequence[int],
            started: float) -> RunRecord:
    try:
        props = lab.properties()
    except HarnessError:  # the kernel or driver could not be prepared: the cell says why
        props = {"kernel": cell.kernel}
    seed = cell.seeds[-1] if cell.seeds else seeds[0]
    return RunRecord(f"{scn.name}[{cell.kernel}]", cell.status, cell.duration_s,
                     {**props, "topology": str(scn.topology),
                      "seeds": ",".join(map(str, cell.seeds or seeds))},
                     "; ".join(cell.reasons), "", cell.recovery_ms_max,
                     Path(cell.artifacts[-1]) if cell.artifacts else None,
                     lab_reproduce_command(lab.config, scn, seed), started)


def _record_failure(cell: Cell, result: IterationResult, driver: known.Driver) -> None:
    verdict = known.verdict(cell.scenario, driver, result.failures)
    cell.status = verdict.status
    cell.reasons = [f"seed {result.seed}: {f}" for f in result.failures]
    if verdict.bug:
        cell.reasons.append(verdict.bug.reference)
    elif verdict.resembles:
        cell.reasons.append(verdict.describe())


def table(cells: Sequence[Cell]) -> str:
    """Kernels as rows, scenarios as columns would not fit: scenarios are the rows."""
    kernels = list(dict.fromkeys(c.kernel for c in cells))
    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    by = {(c.kernel, c.scenario): c for c in cells}
    releases = {c.kernel: c.release for c in cells}
    width = max([len(s) for s in scenarios] + [8])
    cols = [max(len(k), len(releases[k]), 12) for k in kernels]
    lines = ["scenario".ljust(width) + "".join(f"  {k:<{w}}" for k, w in zip(kernels, cols,
                                                                               strict=True)),
             " " * width + "".join(f"  {releases[k]:<{w}}" for k, w in zip(kernels, cols,
                                                                            strict=True))]
    for s in scenarios:
        row = s.ljust(width)
        for k, w in zip(kernels, cols, strict=True):
            cell = by.get((k, s))
            row += f"  {(cell.text() if cell else '-'):<{w}}"
        lines.append(row)
    failed = [c for c in cells if c.status is not Status.PASS]
    if failed:
        lines.append("")
        for c in failed:
            lines.append(f"{c.status.value} {c.kernel} {c.scenario}: {'; '.join(c.reasons)}")
    return "\n".join(lines)


def comparisons(cells: Sequence[Cell], names: Sequence[str]) -> tuple[str, int]:
    """Each driver after the first against the first, scenario by scenario, on each kernel
    (and QEMU): the text, and how many figures differ beyond the noise."""
    by = {(c.where, c.scenario, c.driver): c for c in cells}
    base_name, others = names[0], names[1:]
    blocks, found = [], 0
    for cell in cells:
        if cell.driver != base_name:
            continue
        for name in others:
            other = by.get((cell.where, cell.scenario, name))
            if other is None:
                continue
            blocks.append(compare.side_by_side(
                cell.scenario, cell.where, (base_name, name), (cell.text(), other.text()),
                cell.figures, other.figures))
            found += len(compare.flagged(cell.figures, other.figures))
    return "\n\n".join(blocks), found


def exit_status(cells: Sequence[Cell]) -> int:
    return report_mod.exit_status(c.status for c in cells)
