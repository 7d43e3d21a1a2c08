"""A soak's plan (when it is over, where it failed), its segments' data seeds, its reproduce
line, and which scenarios declare a soak; the soak on a VM is in tests/harness."""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import cli
from harness.campaigns import repro as repro_mod
from harness.campaigns.repro import reproduce_command
from harness.errors import HarnessError
from harness.reading.timeline import Timeline
from harness.reading.verdict import Failure, FailureKind, IterationResult
from harness.recovery import scenarios
from harness.recovery import soak as soak_mod
from harness.recovery.registry import Scenario, Soak
from harness.recovery.soak import SoakPlan, procedure, segment_seed


def test_a_plan_is_over_after_its_faults_or_its_time() -> None:
    plan = SoakPlan(faults=3)
    assert not plan.over()
    plan.done = 3
    assert plan.over()
    timed = SoakPlan(seconds=0.05)
    assert not timed.over()  # at least one fault, however short the time
    timed.done = 1
    time.sleep(0.06)
    assert timed.over()
    both = SoakPlan(seconds=3600, faults=2)
    both.done = 2
    assert both.over()


def test_a_plan_needs_a_bound_and_a_fault() -> None:
    with pytest.raises(ValueError):
        SoakPlan()
    with pytest.raises(ValueError):
        SoakPlan(faults=0)


def test_where_a_soak_failed() -> None:
    plan = SoakPlan(faults=500, done=57, failed_at=57, failed_after_s=81.4)
    assert plan.where() == "at fault 57, 81s into the soak"
    plan.found_by = "the verify-only pass of faults 1-100"
    assert plan.where().endswith("; found by the verify-only pass of faults 1-100")
    assert SoakPlan(faults=9, done=9).where() == \
        "after 9 fault(s), when the soak was judged at its end"


def test_every_segment_writes_other_data_than_the_ones_before() -> None:
    seeds = [segment_seed(20261121, k) for k in range(1, 200)]
    assert seeds[0] == 20261121  # the first writes what an iteration of that seed writes
    assert len(set(seeds)) == len(seeds)
    assert segment_seed(5, 2) != segment_seed(6, 1) and segment_seed(5, 2) != segment_seed(5, 1)


def test_a_failed_soak_reproduces_with_its_faults_not_its_time() -> None:
    args = argparse.Namespace(kernel="debian:6.1", qemu="qemu-system-x86_64", accel=None,
                              topology="", no_snapshot=False, soak=600.0, soak_faults=None)
    scn = scenarios.get("reset-under-load")
    assert reproduce_command(args, scn, 5, soak=None, soak_faults=57) == (
        "python -m harness repro reset-under-load --seed 5 --iterations 1 --soak-faults 57 "
        "--kernel debian:6.1")


def test_the_soaks_cover_the_reset_scenarios() -> None:
    soaked = {n for n in scenarios.names() if scenarios.get(n).soak is not None}
    assert {"reset-under-load", "reset-under-load-2cpu", "reset-under-load-2ns",
            "reset-under-load-2ctrl", "reset-storm", "rescan-under-load", "flr-under-load",
            "poll-queues"} <= soaked
    # a silent device logs timeouts and resets itself: held stable between faults only
    assert scenarios.get("bus-master-off").soak.logs_trouble  # type: ignore[union-attr]
    assert not scenarios.get("reset-under-load").soak.logs_trouble  # type: ignore[union-attr]


def test_a_scenario_without_a_soak_is_refused() -> None:
    with pytest.raises(ValueError):
        procedure(scenarios.get("media-error"), SoakPlan(faults=1))


def test_repro_refuses_a_soak_of_a_scenario_that_has_none() -> None:
    from harness.campaigns import repro

    args = argparse.Namespace(until_fail=False, budget=None, iterations=None, seed=1,
                              topology="", soak=60.0, soak_faults=None)
    with pytest.raises(HarnessError, match=r"media-error has no soak; these have: .*"
                       r"reset-under-load"):
        repro.run(lambda a: pytest.fail("no lab before the arguments are checked"), args,
                  scenarios.get("media-error"))
    args.soak, args.soak_faults = None, 0
    with pytest.raises(HarnessError, match="--soak-faults must be at least 1"):
        repro.run(lambda a: pytest.fail("no lab"), args, scenarios.get("reset-under-load"))


def test_a_soak_numbers_its_faults_on_the_status_line_and_prints_its_checkpoints(
        capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from harness.campaigns.repro import soak_events
    from harness.progress import RunProgress

    out = io.StringIO()
    plan = SoakPlan(seconds=600, done=7)
    on_event = soak_events(RunProgress("reset-under-load", 1, out, live=True), plan)
    on_event("fault", "reset_controller nvme0")
    assert re.search(r"injecting #7, \d+s left: reset_controller nvme0$", out.getvalue())
    on_event("checkpoint", "faults 1-7: every completed write intact")
    printed = capsys.readouterr().out  # a line of its own, in a CI log too
    assert re.fullmatch(r" +\d+s faults 1-7: every completed write intact; 7 faults so far, "
                        r"\d+ an hour\n", printed)
    quiet = io.StringIO()
    soak_events(RunProgress("r", 1, quiet, live=False), plan)("checkpoint", "faults 1-7: x")
    assert quiet.getvalue() == "" and "faults 1-7: x" in capsys.readouterr().out


class _FakeSoaks:
    """repro's VMs and soaks faked: each soak "did" ``done`` faults and failed at
    ``failed_at`` (None: passed); what repro prints of it is the logic under test."""

    def __init__(self, done: int, failed_at: int | None) -> None:
        self.done, self.failed_at = done, failed_at
        self.plans: list[SoakPlan] = []

    def procedure(self, scn: object, plan: SoakPlan) -> object:
        self.plans.append(plan)
        return lambda ctx: None

    def run_iteration(self, lab: object, scn: Any, seed: int, artifacts: Path,
                      on_event: Any = None, procedure: Any = None) -> IterationResult:
        assert procedure is not None, "a soak runs its own procedure"
        plan = self.plans[-1]
        plan.done, plan.failed_at, plan.failed_after_s = self.done, self.failed_at, 81.0
        failures = () if self.failed_at is None else (
            Failure(FailureKind.SLOW, "no write of load0 completed", code="io-stalled"),)
        return IterationResult(scn.name, seed, failures, (0.1, 0.2, 0.3), (), (), 30.0,
                               artifacts)


@pytest.fixture
def fake_soaks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., _FakeSoaks]:
    from tests.unit.test_report_artifacts import FakeLab

    def make(done: int, failed_at: int | None) -> _FakeSoaks:
        fake = _FakeSoaks(done, failed_at)
        monkeypatch.setattr(cli, "Lab", FakeLab)
        monkeypatch.setattr(soak_mod, "procedure", fake.procedure)
        monkeypatch.setattr(repro_mod, "run_iteration", fake.run_iteration)
        return fake
    monkeypatch.chdir(tmp_path)
    return make


def test_a_failed_soak_names_its_fault_and_replays_it_by_count(
        fake_soaks: Callable[..., _FakeSoaks], capsys: pytest.CaptureFixture[str]) -> None:
    fake = fake_soaks(57, 57)
    assert cli.main(["repro", "reset-under-load", "--seed", "5", "--soak", "600",
                     "--soak-checkpoint", "50", "--artifacts", "art", "--report-dir",
                     "report"]) == 1
    assert (fake.plans[0].seconds, fake.plans[0].faults, fake.plans[0].checkpoint) == (
        600.0, None, 50)
    out, err = capsys.readouterr()
    assert "soak 1/1 seed 5: FAIL: " in out and "each 600s of faults" in out
    assert "nvmeh: soak seed 5 failed at fault 57, 81s into the soak" in err
    assert ("reproduce (the same faults on a fresh VM): python -m harness repro "
            "reset-under-load --seed 5 --iterations 1 --soak-faults 57 --soak-checkpoint 50"
            in err)
    assert "--soak 600" not in err
    # the report says the same
    [run] = json.loads((Path("report") / "runs.json").read_text())["runs"]
    assert "--soak-faults 57" in run["reproduce"] and "soak: at fault 57" in run["message"]


def test_soaks_until_one_fails_run_successive_seeds_within_the_budget(
        fake_soaks: Callable[..., _FakeSoaks], capsys: pytest.CaptureFixture[str]) -> None:
    fake_soaks(12, None)
    assert cli.main(["repro", "reset-under-load", "--seed", "5", "--soak", "60",
                     "--until-fail", "--budget", "1", "--artifacts", "art"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^soak 1 seed 5: PASS in 30.0s, 3 recoveries, .*; 12 faults, 1440 "
                     r"verified faults an hour; recoveries p50 \d+ ms, p99 \d+ ms, max 300 ms$",
                     out, re.MULTILINE), out
    assert re.search(r"budget spent: \d+ soak\(s\) passed, seeds 5\.\.\d+$", out, re.MULTILINE)


class _FakeLoad:
    name = "load0"

    def __init__(self) -> None:
        self.params = {"FILENAME": "/dev/nvme0n1"}

    def writes_resume(self, bound: float) -> bool:
        return True

    def start_verify_pass(self) -> object:
        return object()


class _SoakContext:
    """What a soak's segments ask of the Context, recorded: where the log is held stable."""

    def __init__(self) -> None:
        self.rng, self.seed, self.timeline, self.failures = random.Random(1), 1, Timeline(), []
        self.vm = SimpleNamespace(topology=SimpleNamespace(subsystem=False))
        self.log = SimpleNamespace(mark=lambda: 100.0)
        self.verification = SimpleNamespace(conclude=lambda load, bg: None)
        self.calls: list[str] = []

    def event(self, kind: str, detail: str = "") -> None:
        pass

    def measure_kernel_clock(self) -> None:
        pass

    def sleep(self, seconds: float) -> None:
        pass

    def check_stable(self, since: float | None = None) -> None:
        self.calls.append(f"stable since {since}")

    def finish_loads(self, loads: list[Any], now: bool = False, verify: bool = True) -> None:
        pass

    def stop_monitors(self) -> None:
        pass

    def start_monitors(self) -> None:
        pass


@pytest.mark.parametrize("logs_trouble, expected", [
    # a fault that logs nothing of its own: the whole segment's log, once per checkpoint
    (False, ["fault", "fault", "stable since 100.0", "fault", "stable since 100.0"]),
    # a silent device: from each recovery to the next fault, as an iteration after its last
    (True, ["fault", "stable since None", "fault", "stable since None", "stable since None",
            "fault", "stable since None", "stable since None"]),
])
def test_a_soak_holds_the_log_stable_where_its_faults_log_nothing_of_their_own(
        logs_trouble: bool, expected: list[str]) -> None:
    ctx = _SoakContext()
    soak = Soak(lambda c: ctx.calls.append("fault"), gap=(0.0, 0.0), logs_trouble=logs_trouble,
                loads=lambda c, runtime, seed, region: [_FakeLoad()])
    scn = Scenario("x", "x", lambda c: None, soak=soak)
    procedure(scn, SoakPlan(faults=3, checkpoint=2))(ctx)  # type: ignore[arg-type]
    assert ctx.calls == expected
