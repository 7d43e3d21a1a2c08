"""``repro``: run a scenario for N seeded iterations, with exit codes for ``git bisect run``."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.campaigns import options as opt
from harness.errors import EXIT_HARNESS, EXIT_OK, HarnessError
from harness.machine.lab import Lab, LabConfig
from harness.progress import RunProgress
from harness.reading.verdict import IterationResult, Status
from harness.recovery import known, scenarios, soak
from harness.recovery.registry import Scenario, ScenarioSkipped
from harness.recovery.runner import MAX_SEED, run_iteration
from harness.recovery.soak import SoakPlan
from harness.report import ReportDir, RunRecord, artifacts_root
from harness.target.machine import TargetConfig, TargetLab
from harness.util import percentile

EXIT_DRIVER_FAILED = 1
MAX_ITERATIONS = 100_000
DEFAULT_BUDGET_S = 3600.0


# The options a repro command line carries after the seed, in their order.
REPRO_OPTIONS = (opt.SOAK, opt.SOAK_FAULTS, opt.SOAK_CHECKPOINT, opt.KERNEL, opt.NVME_SRC,
                 opt.QEMU, opt.ACCEL, opt.TOPOLOGY, opt.NO_SNAPSHOT, *opt.TARGET_OPTIONS)


def _repro_command(values: Mapping[str, Any], scn: Scenario, seed: int) -> str:
    return opt.reproduce_command(["python", "-m", "harness", "repro", scn.name,
                                  opt.SEED.flag, str(seed), opt.ITERATIONS.flag, "1"],
                                 values, REPRO_OPTIONS)


def reproduce_command(args: argparse.Namespace, scn: Scenario, seed: int,
                      **values: Any) -> str:
    """The ``repro`` command line that re-runs one iteration (options as ``repro`` names
    them, defaults left out; ``values`` by dest replace those of ``args``)."""
    return _repro_command({**vars(args), **values}, scn, seed)


def lab_reproduce_command(config: LabConfig | TargetConfig, scn: Scenario, seed: int,
                          **values: Any) -> str:
    """The same, for an iteration run in a lab made by other means (matrix, pytest)."""
    made = (opt.lab_values(config) if isinstance(config, LabConfig) else
            {"target": str(config.address), "device": config.device,
             "destroy_data_on": config.destroy_data_on, "power_cmd": config.power_cmd,
             "boot_timeout": config.boot_timeout, "nvme_src": config.nvme_src})
    return _repro_command({**made, **values}, scn, seed)


def describe(result: IterationResult) -> str:
    if result.passed:
        rec = max(result.recovery_s) if result.recovery_s else 0.0
        io = (f", writes again {max(result.io_resume_s) * 1000:.0f} ms after live at most"
              if result.io_resume_s else "")
        back = [j.back_after for j in result.throughput if j.back_after is not None]
        tp = (f", throughput back within {max(back):.1f}s" if back else "")
        return (f"PASS in {result.duration:.1f}s, {len(result.recovery_s)} recoveries, "
                f"slowest {rec * 1000:.0f} ms{io}{tp}")
    return "FAIL: " + "; ".join(str(f) for f in result.failures)


def soak_rate(plan: SoakPlan, result: IterationResult) -> str:
    """A soak's faults and what they make an hour, all of its time counted, and how its
    recovery times spread."""
    ms = [1000 * s for s in result.recovery_s]
    spread = ""
    if len(ms) >= 2:
        p50, p99 = percentile(ms, 50), percentile(ms, 99)
        spread = f"; recoveries p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(ms):.0f} ms"
    return (f"{plan.done} faults, {3600 * plan.done / result.duration:.0f} verified "
            f"faults an hour{spread}")


def soak_events(progress: RunProgress, plan: SoakPlan) -> Callable[[str, str], None]:
    """A soak's events on the status line (each fault numbered, the time left), and a line
    of its own for each checkpoint: on a terminal and in a CI log alike, an hour's soak says
    how far it got."""
    def on_event(kind: str, detail: str) -> None:
        if kind == "fault":
            left = (f", {max(0.0, plan.seconds - plan.elapsed):.0f}s left"
                    if plan.seconds is not None else "")
            detail = f"#{plan.done}{'/' + str(plan.faults) if plan.faults else ''}{left}: " \
                     + detail
        progress.event(kind, detail)
        if kind == "checkpoint":
            progress.clear()
            print(f"  {plan.elapsed:6.0f}s {detail}; {plan.done} faults so far, "
                  f"{3600 * plan.done / max(plan.elapsed, 1.0):.0f} an hour", flush=True)
    return on_event


def soak_plans(args: argparse.Namespace) -> Callable[[], SoakPlan] | None:
    """The soaks ``--soak``/``--soak-faults``/``--soak-checkpoint`` ask for, each planned anew
    (None: iterations, not soaks); values that plan nothing are refused."""
    seconds, faults = getattr(args, "soak", None), getattr(args, "soak_faults", None)
    if faults is not None and faults < 1:
        raise HarnessError("--soak-faults must be at least 1")
    checkpoint = getattr(args, "soak_checkpoint", opt.SOAK_CHECKPOINT.default)
    if checkpoint < 1:
        raise HarnessError("--soak-checkpoint must be at least 1")
    if seconds is None and faults is None:
        return None
    return lambda: SoakPlan(seconds, faults, checkpoint)


def run(make_lab: Callable[[argparse.Namespace], Lab | TargetLab], args: argparse.Namespace,
        scn: Scenario) -> int:
    """Iterations with seeds S, S+1, ...: ``--iterations N`` of them, or with ``--until-fail``
    as many as fit in ``--budget`` seconds (N then caps them). Exit codes suit git bisect."""
    until_fail = getattr(args, "until_fail", False)
    budget = getattr(args, "budget", None)
    iterations = args.iterations if args.iterations is not None else (
        MAX_ITERATIONS if until_fail else 1)
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise HarnessError(f"--iterations must be between 1 and {MAX_ITERATIONS}")
    if budget is not None and (not until_fail or budget <= 0):
        raise HarnessError("--budget goes with --until-fail and must be positive")
    seed = args.seed if args.seed is not None else random.randint(0, MAX_SEED - iterations)
    if not 0 <= seed <= MAX_SEED - iterations:
        raise HarnessError(f"--seed must be between 0 and {MAX_SEED - iterations}")
    if args.topology:
        raise HarnessError("repro runs each scenario on its own topology; --topology is not "
                           "accepted here")
    soak_seconds, soak_faults = getattr(args, "soak", None), getattr(args, "soak_faults", None)
    soaking = soak_seconds is not None or soak_faults is not None
    if soaking and scn.soak is None:
        raise HarnessError(f"{scn.name} has no soak; these have: "
                           + ", ".join(n for n in scenarios.names() if scenarios.get(n).soak))
    plans = soak_plans(args)
    lab = make_lab(args)
    lab.prepare()  # images, or the target reached and checked: their errors are not an iteration's
    report_dir = getattr(args, "report_dir", None)
    root = artifacts_root(args.artifacts, report_dir) or Path(
        tempfile.mkdtemp(prefix=f"nvmeh-repro-{scn.name}-"))
    deadline = time.monotonic() + (budget or DEFAULT_BUDGET_S) if until_fail else None
    plan = (f"until it fails (at most {iterations} iterations, "
            f"{budget or DEFAULT_BUDGET_S:g}s)" if until_fail else f"{iterations} iteration(s)")
    if soaking:
        plan = plan.replace("iteration", "soak") + ", each " + " or ".join(filter(None, [
            f"{soak_seconds:g}s of faults" if soak_seconds else "",
            f"{soak_faults} fault(s)" if soak_faults else ""]))
    print(f"nvmeh: {scn.name}, {plan} from seed {seed}, {lab.accel}; artifacts in {root}"
          + (f"; report in {report_dir}/index.html" if report_dir else ""), flush=True)
    total = "" if until_fail else f"/{iterations}"
    report = ReportDir(report_dir, f"repro {scn.name}") if report_dir else None
    props = {**lab.properties(), "topology": str(scn.topology)} if report else {}

    def record(status: Status, seed: int, started: float, artifacts: Path, message: str = "",
               detail: str = "", result: IterationResult | None = None,
               again: str | None = None) -> None:
        if report is None:
            return
        report.add(RunRecord(
            f"{scn.name}[seed {seed}]", status, time.time() - started,
            {**props, "seed": str(seed)}, message, detail,
            max(result.recovery_s) * 1000 if result and result.recovery_s else None,
            artifacts,
            again or reproduce_command(args, scn, seed), started))

    progress = RunProgress(scn.name, None if until_fail else iterations)
    for i in range(iterations):
        if deadline is not None and time.monotonic() >= deadline:
            print(f"nvmeh: budget spent: {i} {'soak' if soaking else 'iteration'}(s) passed, "
                  f"seeds {seed}..{seed + i - 1}",
                  flush=True)
            return EXIT_OK
        s = seed + i
        started, artifacts = time.time(), Path(root) / f"iter{i:04d}-seed{s}"
        progress.begin(s)
        soaked = plans() if plans else None
        try:
            result = run_iteration(lab, scn, s, artifacts,
                                   soak_events(progress, soaked) if soaked else progress.event,
                                   soak.procedure(scn, soaked) if soaked else None)
        except ScenarioSkipped as exc:
            progress.end()
            print(f"nvmeh: skipped: {exc}", file=sys.stderr)
            record(Status.SKIP, s, started, artifacts, str(exc))
            return EXIT_HARNESS
        except HarnessError as exc:
            progress.end()
            record(Status.ERROR, s, started, artifacts, str(exc), exc.detail)
            # QEMU crashed, the guest was unreachable before the scenario began, ...: this
            # iteration tested nothing, which is 125 for git bisect, whatever the cause.
            print(f"nvmeh: error: iteration {i + 1} seed {s} could not run: {exc}",
                  file=sys.stderr)
            if exc.detail:
                print(exc.detail.rstrip()[-3000:], file=sys.stderr)
            print(f"reproduce: {reproduce_command(args, scn, s)}", file=sys.stderr)
            return EXIT_HARNESS
        progress.end()
        print(f"{'soak' if soaked else 'iteration'} {i + 1}{total} seed {s}: {describe(result)}"
              + (f"; {soak_rate(soaked, result)}" if soaked else ""), flush=True)
        verdict = known.verdict(scn.name, known.driver_of(lab), result.failures)
        said = verdict.describe()
        again = (reproduce_command(args, scn, s, soak=None,
                                   soak_faults=soaked.failed_at or soaked.done)
                 if soaked is not None and not result.passed else None)
        where = f" (soak: {soaked.where()})" if again and soaked else ""
        record(verdict.status, s, started, artifacts, "; ".join(str(f) for f in result.failures)
               + where + (f" ({said})" if said else ""),
               "\n\n".join(f.evidence for f in result.failures if f.evidence), result, again)
        if not result.passed:
            for failure in result.failures:
                if failure.evidence:
                    print(f"--- evidence ({failure.kind.value}) ---\n"
                          f"{failure.evidence.strip()[-3000:]}", file=sys.stderr)
            print(f"artifacts: {result.artifacts}", file=sys.stderr)
            if soaked is not None:
                print(f"nvmeh: soak seed {s} failed {soaked.where()}", file=sys.stderr)
                print(f"reproduce (the same faults on a fresh VM): {again}", file=sys.stderr)
            else:
                print(f"reproduce: {reproduce_command(args, scn, s)}", file=sys.stderr)
            if said:  # a known bug is still a failure: a bisect must see it
                print(f"nvmeh: {said}", file=sys.stderr)
            return EXIT_DRIVER_FAILED
    return EXIT_OK
