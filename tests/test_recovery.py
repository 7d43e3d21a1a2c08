"""The NVMe recovery suite: every registered scenario, one seeded iteration each (with
``--soak SECONDS``: a soak of each scenario that has one, the others skipped).

A failure recorded in :mod:`harness.recovery.known` for the kernel under test is expected (xfail,
with the bug's reference); any other failure fails the test.

The same procedures run under ``python -m harness repro SCENARIO``; a failure here names
what broke (lost data, I/O error, no recovery, hang, oops) and where its artifacts are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.campaigns.repro import lab_reproduce_command
from harness.machine.lab import Lab
from harness.recovery import known, scenarios, soak
from harness.recovery.runner import run_iteration, run_tested_iteration, skip_reason
from harness.recovery.soak import SoakPlan
from harness.report import Status
from harness.target.machine import TargetLab


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every scenario; those outside the CI subset are marked ``full`` (tox -e nvme runs
    them, the default tox run deselects them)."""
    if "scenario_name" in metafunc.fixturenames:
        metafunc.parametrize("scenario_name", [
            pytest.param(name, marks=() if scenarios.get(name).ci else pytest.mark.full)
            for name in scenarios.names()])
    count = int(metafunc.config.getoption("iterations"))
    if "seed" in metafunc.fixturenames and count > 1:  # seeds S..S+N-1, S from --seed
        first = int(metafunc.config.getoption("seed"))
        metafunc.parametrize("seed", [first + i for i in range(count)],
                             ids=[f"seed{first + i}" for i in range(count)])


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """--seed, when --iterations does not parametrize it."""
    return int(request.config.getoption("seed"))


def test_scenario(scenario_name: str, lab: Lab | TargetLab, artifacts: Path, seed: int,
                  request: pytest.FixtureRequest) -> None:
    scn = scenarios.get(scenario_name)
    if (reason := skip_reason(lab, scn)) is not None:
        pytest.skip(reason)
    seconds = request.config.getoption("soak")
    plan = SoakPlan(seconds) if seconds is not None else None
    if plan is not None and scn.soak is None:
        pytest.skip(f"{scenario_name} has no soak")
    # a soak's plan has counted its faults: not run again
    result = (run_iteration(lab, scn, seed, artifacts, procedure=soak.procedure(scn, plan))
              if plan else run_tested_iteration(lab, scn, seed, artifacts,
                                                said=lambda line: print(line, file=sys.stderr)))
    verdict = known.verdict(scenario_name, known.driver_of(lab), result.failures)
    if verdict.bug is not None:
        pytest.xfail(verdict.bug.describe())
    failures = "\n".join(f"{f}\n{f.evidence.strip()[-1500:]}" for f in result.failures)
    where = (f" (soak: {plan.where()})" if plan else "")
    again = (lab_reproduce_command(lab.config, scn, seed, soak_faults=plan.failed_at or plan.done)
             if plan else lab_reproduce_command(lab.config, scn, seed))
    assert verdict.status is Status.PASS, (
        f"{scenario_name} seed {seed} failed{where}:\n{failures}\n{verdict.describe()}\n"
        f"reproduce: {again}")
    assert result.recovery_s, "the scenario recorded no recovery"
