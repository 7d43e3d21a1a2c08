"""``repro``: run a scenario for N seeded iterations, with exit codes for ``git bisect run``."""

from __future__ import annotations

import argparse
import random
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness import known
from harness.errors import EXIT_HARNESS, EXIT_OK, HarnessError
from harness.lab import Lab
from harness.scenario import MAX_SEED, IterationResult, Scenario, run_iteration

EXIT_DRIVER_FAILED = 1
MAX_ITERATIONS = 100_000


def reproduce_command(args: argparse.Namespace, scn: Scenario, seed: int) -> str:
    cmd = ["python", "-m", "harness", "repro", scn.name, "--seed", str(seed), "--iterations", "1"]
    defaults = {"kernel": "debian:6.1", "qemu": "qemu-system-x86_64", "accel": None,
                "topology": ""}
    for opt, default in defaults.items():
        value = getattr(args, opt, default)
        if value != default:
            cmd += [f"--{opt}", str(value)]
    if getattr(args, "no_snapshot", False):
        cmd.append("--no-snapshot")
    return shlex.join(cmd)


def describe(result: IterationResult) -> str:
    if result.passed:
        rec = max(result.recovery_s) if result.recovery_s else 0.0
        io = (f", writes again {max(result.io_resume_s) * 1000:.0f} ms after live at most"
              if result.io_resume_s else "")
        return (f"PASS in {result.duration:.1f}s, {len(result.recovery_s)} recoveries, "
                f"slowest {rec * 1000:.0f} ms{io}")
    return "FAIL: " + "; ".join(str(f) for f in result.failures)


def run(make_lab: Callable[[argparse.Namespace], Lab], args: argparse.Namespace,
        scn: Scenario) -> int:
    if not 1 <= args.iterations <= MAX_ITERATIONS:
        raise HarnessError(f"--iterations must be between 1 and {MAX_ITERATIONS}")
    seed = args.seed if args.seed is not None else random.randint(0, MAX_SEED)
    if not 0 <= seed <= MAX_SEED - args.iterations:
        raise HarnessError(f"--seed must be between 0 and {MAX_SEED - args.iterations}")
    if args.topology:
        raise HarnessError("repro runs each scenario on its own topology; --topology is not "
                           "accepted here")
    lab = make_lab(args)
    root = args.artifacts or Path(tempfile.mkdtemp(prefix=f"nvmeh-repro-{scn.name}-"))
    print(f"nvmeh: {scn.name}, {args.iterations} iteration(s) from seed {seed}, "
          f"{lab.accel}; artifacts in {root}", flush=True)
    for i in range(args.iterations):
        s = seed + i
        try:
            result = run_iteration(lab, scn, s, Path(root) / f"iter{i:04d}-seed{s}")
        except HarnessError as exc:
            # QEMU crashed, the guest was unreachable before the scenario began, ...: this
            # iteration tested nothing, which is 125 for git bisect, whatever the cause.
            print(f"nvmeh: error: iteration {i + 1} seed {s} could not run: {exc}",
                  file=sys.stderr)
            if exc.detail:
                print(exc.detail.rstrip()[-3000:], file=sys.stderr)
            print(f"reproduce: {reproduce_command(args, scn, s)}", file=sys.stderr)
            return EXIT_HARNESS
        print(f"iteration {i + 1}/{args.iterations} seed {s}: {describe(result)}", flush=True)
        if not result.passed:
            for failure in result.failures:
                if failure.evidence:
                    print(f"--- evidence ({failure.kind.value}) ---\n"
                          f"{failure.evidence.strip()[-3000:]}", file=sys.stderr)
            print(f"artifacts: {result.artifacts}", file=sys.stderr)
            print(f"reproduce: {reproduce_command(args, scn, s)}", file=sys.stderr)
            bug = known.explain(scn.name, lab.image.kernel.release, result.failures)
            if bug is not None:  # still a failure: a bisect must see it
                print(f"nvmeh: {bug.describe()}", file=sys.stderr)
            return EXIT_DRIVER_FAILED
    return EXIT_OK
