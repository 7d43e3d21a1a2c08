"""pytest --report-dir: each test's outcome becomes one record, FAIL kept apart from ERROR,
SKIP and KNOWN (xfail), through the plugin's own hooks (no VM: the statuses are the logic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("QEMU would not start")

def test_ok():
    pass

def test_driver_failed():
    assert False, "lost or corrupted data: verify-only pass: EILSEQ"

def test_harness_failed(broken):
    pass

def test_harness_broke_mid_test():
    from harness.errors import HarnessError
    raise HarnessError("cannot judge throughput: load1 ran no whole second")

def test_skipped():
    pytest.skip("needs CONFIG_FAULT_INJECTION=y")

def test_known_bug():
    pytest.xfail("known kernel bug on 6.1..6.7: 839a40d1e730")
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_report_dir_records_every_test_with_its_status(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]) -> None:
    # with xdist the records are made in the workers and written by the controller alone
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    pytester.makepyfile(test_sample=TESTS)
    report = pytester.path / "report"
    run = pytester.runpytest_subprocess if workers else pytester.runpytest
    result = run("-p", "harness.plugin", "--report-dir", str(report), "--seed", "7", *workers)
    result.assert_outcomes(passed=1, failed=2, errors=1, skipped=1, xfailed=1)
    runs = {r["name"].rsplit("::", 1)[1]: r
            for r in json.loads((report / "runs.json").read_text())["runs"]}
    assert {n: r["status"] for n, r in runs.items()} == {
        "test_ok": "PASS", "test_driver_failed": "FAIL", "test_harness_failed": "ERROR",
        "test_harness_broke_mid_test": "ERROR", "test_skipped": "SKIP",
        "test_known_bug": "KNOWN"}
    assert "EILSEQ" in runs["test_driver_failed"]["message"]
    assert "839a40d1e730" in runs["test_known_bug"]["message"]
    assert "CONFIG_FAULT_INJECTION" in runs["test_skipped"]["message"]
    assert runs["test_ok"]["properties"]["seed"] == "7"
    assert "pytest test_sample.py::test_driver_failed" in runs["test_driver_failed"]["reproduce"]
    summary = json.loads((report / "summary.json").read_text())["tests"]
    assert sorted(t["status"] for t in summary) == ["ERROR", "ERROR", "FAIL", "FAIL", "PASS",
                                                    "SKIP"]
    assert (report / "index.html").read_text().count("<tr class=") == 6
    assert Path(report / "junit.xml").exists()


def test_auto_workers_fit_the_cores_and_the_memory() -> None:
    from harness.plugin import VM_FOOTPRINT, auto_workers

    assert auto_workers(2, 24 << 30) == 2  # this machine: the cores decide
    assert auto_workers(64, 10 * VM_FOOTPRINT + 1) == 10  # a big host: the memory does
    assert auto_workers(8, 0) == 1
