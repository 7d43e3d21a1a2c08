"""A report dir holds what it links to: ``repro``, ``matrix`` and pytest put their tests'
artifacts in the report dir's ``artifacts/`` unless told another place (a fake lab and
iteration: where the files go is the logic, no VM)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import cli
from harness.campaigns import matrix, repro
from harness.machine.lab import LabConfig
from harness.reading.verdict import IterationResult
from harness.recovery.registry import Scenario

pytest_plugins = ["pytester"]


class FakeLab:
    accel = "tcg"
    image = SimpleNamespace(kernel=SimpleNamespace(spec="debian:6.12", release="6.12.0-1-amd64",
                                                   version="6.12.1"), driver=None)

    def __init__(self, config: LabConfig) -> None:
        self.config = config

    def prepare(self) -> None:
        pass

    def properties(self) -> dict[str, str]:
        return {"kernel": self.config.kernel, "kernel_release": "6.12.0-1-amd64"}


def passing_iteration(lab: FakeLab, scn: Scenario, seed: int, artifacts: Path,
                      on_event: Any = None, procedure: Any = None) -> IterationResult:
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "console.log").write_text("[    1.0] nvme nvme0: 1/0/0 default/read/poll\n")
    return IterationResult(scn.name, seed, (), (), (), (), 1.0, artifacts)


@pytest.fixture
def fake_vms(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli, "Lab", FakeLab)
    monkeypatch.setattr(repro, "run_iteration", passing_iteration)
    monkeypatch.setattr(matrix, "run_iteration", passing_iteration)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(tmp_path)


def _runs(report: Path) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads((report / "runs.json").read_text())["runs"]
    return runs


@pytest.mark.parametrize(("options", "where"), [
    (["--report-dir", "report"], "report/artifacts"),
    (["--report-dir", "report", "--artifacts", "art"], "art"),
    ([], "tmp/nvmeh-repro-reset-storm-*"),
], ids=["report-dir", "both", "neither"])
def test_repro_keeps_its_artifacts_in_the_report_dir_unless_told_otherwise(
        fake_vms: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        options: list[str], where: str) -> None:
    assert cli.main(["repro", "reset-storm", "--seed", "3", *options]) == 0
    [root] = tmp_path.glob(where)
    iteration = root / "iter0000-seed3"
    assert (iteration / "console.log").is_file()
    assert f"artifacts in {root.relative_to(tmp_path) if options else root}" in (
        capsys.readouterr().out)
    if options:
        assert (iteration / "reproduce.sh").is_file()
        [run] = _runs(tmp_path / "report")
        assert run["artifacts"] == ("artifacts/iter0000-seed3" if where.startswith("report/")
                                    else str(iteration.resolve()))


def test_matrix_keeps_its_artifacts_in_the_report_dir(fake_vms: None, tmp_path: Path) -> None:
    argv = ["matrix", "--kernels", "debian:6.12", "reset-storm", "--seed", "3",
            "--report-dir", "report"]
    assert cli.main(argv) == 0
    cell = Path("report/artifacts/debian:6.12/reset-storm-seed3")
    assert (cell / "console.log").is_file() and (cell / "reproduce.sh").is_file()
    assert [r["artifacts"] for r in _runs(tmp_path / "report")] == [
        "artifacts/debian:6.12/reset-storm-seed3"]


TESTS = """
def test_writes(artifacts):
    (artifacts / "console.log").write_text("booted\\n")
"""


@pytest.mark.parametrize(("options", "where"), [
    (["--report-dir", "report"], "report/artifacts"),
    (["--report-dir", "report", "--artifacts-dir", "art"], "art"),
    ([], "artifacts"),
], ids=["report-dir", "both", "neither"])
def test_pytest_keeps_its_artifacts_in_the_report_dir_unless_told_otherwise(
        pytester: pytest.Pytester, options: list[str], where: str) -> None:
    pytester.makepyfile(test_sample=TESTS)
    pytester.runpytest("-p", "harness.plugin", *options).assert_outcomes(passed=1)
    test_dir = pytester.path / where / "test_sample.py_test_writes"
    assert (test_dir / "console.log").is_file()
    if options:
        [run] = _runs(pytester.path / "report")
        assert run["artifacts"] == ("artifacts/test_sample.py_test_writes"
                                    if where.startswith("report/") else str(test_dir))
