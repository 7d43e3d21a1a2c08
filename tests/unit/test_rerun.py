"""An iteration QEMU crashed (a stale TCG translation: it tested nothing) is run once more
with the same seed; a second such crash, and any other outcome, stands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import EmulatorCrash, HarnessError
from harness.recovery import runner, scenarios


class Runs:
    """Stands in for run_iteration: each call takes the next outcome (raised if an error)."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes, self.seeds = list(outcomes), []

    def __call__(self, lab: Any, scn: Any, seed: int, artifacts: Path,
                 procedure: Any = None) -> Any:
        self.seeds.append(seed)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


CRASH = EmulatorCrash("the guest crashed on an int3 that is no longer in its code")


def rerun(monkeypatch: pytest.MonkeyPatch, runs: Runs) -> tuple[object, list[str]]:
    monkeypatch.setattr(runner, "run_iteration", runs)
    said: list[str] = []
    result = runner.run_tested_iteration(None, scenarios.get("reset-storm"),  # type: ignore[arg-type]
                                         7, Path("/nonexistent"), said=said.append)
    return result, said


def test_a_crash_of_qemu_is_run_again_with_the_same_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = Runs(CRASH, "passed")
    result, said = rerun(monkeypatch, runs)
    assert result == "passed" and runs.seeds == [7, 7]
    assert said == ["nvmeh: reset-storm seed 7 tested nothing (the guest crashed on an int3 "
                    "that is no longer in its code); running it again"]


def test_a_second_crash_and_other_errors_stand(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EmulatorCrash):
        rerun(monkeypatch, Runs(CRASH, CRASH))
    runs = Runs(HarnessError("no disk"), "passed")
    with pytest.raises(HarnessError, match="no disk"):
        rerun(monkeypatch, runs)
    assert runs.seeds == [7]
    runs = Runs("failed")
    assert rerun(monkeypatch, runs) == ("failed", []) and runs.seeds == [7]
