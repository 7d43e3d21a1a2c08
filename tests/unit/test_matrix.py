"""The kernel-by-scenario table and the matrix's exit status, on hand-made cells."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.campaigns import repro
from harness.campaigns.compare import SeedFigures
from harness.campaigns.matrix import Cell, Status, column, exit_status, run_cell, table
from harness.errors import HarnessError
from harness.recovery import scenarios
from harness.recovery.soak import SoakPlan


def cell(kernel: str, scenario: str, status: Status = Status.PASS,
         recovery: tuple[float, ...] = (0.05, 0.07, 0.06)) -> Cell:
    c = Cell(kernel, f"{kernel[7:]}.0-1-amd64", scenario, status)
    c.figures = [SeedFigures(1, list(recovery))]
    if status is not Status.PASS:
        c.reasons = ["seed 1: controller did not return to live"]
    return c


def test_table_has_a_column_per_kernel_and_explains_what_did_not_pass():
    cells = [cell("debian:6.1", "reset-storm"), cell("debian:6.12", "reset-storm"),
             cell("debian:6.1", "hot-remove"),
             cell("debian:6.12", "hot-remove", Status.FAIL, ())]
    text = table(cells)
    lines = text.splitlines()
    assert "debian:6.1" in lines[0] and "debian:6.12" in lines[0]
    assert "6.12.0-1-amd64" in lines[1]
    storm = next(ln for ln in lines if ln.startswith("reset-storm"))
    assert storm.split()[1:] == ["pass", "60ms", "pass", "60ms"]
    assert "FAIL debian:6.12 hot-remove: seed 1: controller did not return to live" in text


def test_with_several_qemus_a_column_is_a_kernel_under_one_qemu():
    assert column("debian:6.12") == "debian:6.12"
    cells = [cell(column("debian:6.12", q), "reset-storm") for q in
             ("qemu-system-x86_64", "debian:trixie")]
    cells[1].release = "6.12.0-1-amd64"
    header = table(cells).splitlines()[0]
    assert "debian:6.12 qemu-system-x86_64" in header and "debian:6.12 debian:trixie" in header


def test_exit_status_is_one_only_for_an_unexplained_driver_failure():
    assert exit_status([cell("debian:6.1", "a")]) == 0
    assert exit_status([cell("debian:6.1", "a"), cell("debian:6.1", "b", Status.KNOWN)]) == 0
    assert exit_status([cell("debian:6.1", "a", Status.ERROR)]) == 125
    assert exit_status([cell("debian:6.1", "a", Status.ERROR),
                        cell("debian:6.1", "b", Status.FAIL)]) == 1


def test_cell_json_lowercases_the_status_and_keeps_recovery_figures():
    d = cell("debian:6.1", "a", recovery=(0.1, 0.3)).as_dict()
    assert d["status"] == "pass" and d["recovery_ms_p50"] == pytest.approx(200)
    assert d["recovery_ms_max"] == pytest.approx(300)


@pytest.mark.parametrize(("until_fail", "budget", "iterations", "message"), [
    (False, 60.0, None, "--budget goes with --until-fail"),
    (True, -1.0, None, "--budget goes with --until-fail and must be positive"),
    (True, None, 0, "--iterations must be between"),
])
def test_until_fail_options_are_checked_before_anything_boots(until_fail, budget, iterations,
                                                              message):
    args = argparse.Namespace(until_fail=until_fail, budget=budget, iterations=iterations,
                              seed=1, topology="", artifacts=None)

    def no_lab(_: argparse.Namespace) -> None:
        raise AssertionError("a lab was made before the options were checked")

    with pytest.raises(HarnessError, match=message):
        repro.run(no_lab, args, None)  # type: ignore[arg-type]


def test_a_soak_of_a_scenario_that_has_none_is_a_skipped_cell(tmp_path: Path) -> None:
    said: list[str] = []
    got = run_cell(None, scenarios.get("media-error"), [1], tmp_path,  # type: ignore[arg-type]
                   said.append, name="debian:6.12", soaks=lambda: SoakPlan(faults=3))
    assert got.status is Status.SKIP and got.reasons == ["media-error has no soak"]
    assert said == ["debian:6.12 media-error: skip (media-error has no soak)"]
