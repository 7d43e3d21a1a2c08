"""Bad input gets one line naming the culprit (BadInput, exit 125), quickly: the exact inputs
that once gave a traceback, an OverflowError or minutes of building a huge list."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, NoReturn

import pytest

from harness import cli
from harness.errors import EXIT_HARNESS, BadInput
from harness.machine.topology import Topology


def _no_vm(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("bad input reached the lab: a VM would start")


@pytest.fixture
def no_vm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "Lab", _no_vm)


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The single line ``python -m harness ARGV`` prints, after checking it exits 125 fast."""
    started = time.monotonic()
    assert cli.main(argv) == EXIT_HARNESS
    assert time.monotonic() - started < 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nvmeh: error: "), lines
    return lines[0]


TOPOLOGIES = [
    # str.isdigit() accepts superscripts, int() does not
    ("controllers=²", "controllers must be an integer"),
    ("cpus=¹", "cpus must be an integer"),
    ("namespaces=1G:²", "bad namespace '1G:²'"),
    # counts far above the maximum, once built as a list before the range check
    ("controllers=10000000000", "controllers must be between 1 and 8"),
    ("namespaces=10000000000", "a controller needs 1 to 16 namespaces"),
    # sizes no backing file can have (an OverflowError when the VM started)
    ("namespaces=99999999T", "namespace size 99999999T is larger than the maximum 8T"),
    ("namespaces=1G+16T:4096", "namespace size 16T is larger than the maximum 8T"),
    # int() refuses more than 4300 digits
    ("controllers=" + "9" * 5000, "controllers 9+\\.\\.\\. has more than 20 digits"),
    ("namespaces=" + "9" * 5000 + "M", "namespace size 9+\\.\\.\\. has more than 20 digits"),
    ("namespaces=1G:" + "4" * 5000, "namespace block size 4+\\.\\.\\. has more than 20 digits"),
    # re.IGNORECASE without re.ASCII matched the Kelvin sign as a K suffix
    ("memory=1\u212a", "bad memory"),
]


_IDS = [spec if len(spec) < 30 else f"{spec[:20]}...({len(spec)} chars)" for spec, _ in TOPOLOGIES]


@pytest.mark.parametrize("spec, message", TOPOLOGIES, ids=_IDS)
def test_bad_topology_is_refused_at_once(spec: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(BadInput, match=message):
        Topology.parse(spec)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("spec", [spec for spec, _ in TOPOLOGIES], ids=_IDS)
def test_bad_topology_on_the_command_line_is_one_line(
        spec: str, no_vm: None, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(["run", "--topology", spec, "--", "true"], capsys)


def test_the_largest_namespace_is_accepted() -> None:
    t = Topology.parse("namespaces=8T:4096")
    assert t.controllers[0].namespaces[0].size == 8 << 40


def _unwritable(tmp_path: Path) -> list[Path]:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    return [Path("/proc/foo"), a_file, a_file / "sub"]


@pytest.mark.parametrize("argv", [
    ["run", "--artifacts", "{}", "--", "true"],
    ["shell", "--artifacts", "{}"],
    ["bench", "--artifacts", "{}"],
    ["repro", "--artifacts", "{}", "ns-churn-during-reset"],
    ["repro", "--report-dir", "{}", "ns-churn-during-reset"],
    ["matrix", "--kernels", "debian:6.1", "--artifacts", "{}"],
    ["matrix", "--kernels", "debian:6.1", "--report-dir", "{}"],
    ["report", "merge", "{src}", "--into", "{}"],
])
def test_an_unwritable_output_dir_is_one_line_naming_it(
        argv: list[str], tmp_path: Path, no_vm: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "runs.json").write_text('{"title": "t", "runs": []}\n')
    for bad in _unwritable(tmp_path):
        line = _one_line_error([a.format(bad, src=src) for a in argv], capsys)
        assert str(bad) in line


_RECORD = {"name": "t", "status": "PASS", "duration_s": 1.0, "artifacts": None}


@pytest.mark.parametrize("runs_json, message", [
    ("{not json", "cannot read"),
    ("[]", "expected"),
    ('{"title": "t"}', "expected"),
    ('{"title": "t", "runs": {}}', "expected"),
    ('{"title": 1, "runs": []}', "expected"),
    ('{"title": "t", "runs": [1]}', "run 1"),
    ('{"title": "t", "runs": [{"name": "t"}]}', "run 1"),
    ('{"title": "t", "runs": [{"name": "t", "status": "PASS", "duration_s": 1}]}', "run 1"),
    ('{"title": "t", "runs": [{"name": "t", "status": "BOGUS", "duration_s": 1, '
     '"artifacts": null}]}', "run 1"),
    ('{"title": "t", "runs": [{"name": "t", "status": "PASS", "duration_s": "long", '
     '"artifacts": null}]}', "run 1.*duration_s"),
    ('{"title": "t", "runs": [{"name": "t", "status": "PASS", "duration_s": 1, '
     '"artifacts": null, "colour": "blue"}]}', "run 1.*colour"),
    ('{"title": "t", "runs": [{"name": "t", "status": "PASS", "duration_s": 1, '
     '"artifacts": null, "properties": {"seed": 1}}]}', "run 1.*properties"),
])
def test_a_malformed_runs_json_is_one_line_naming_it(
        runs_json: str, message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    for src in good, bad:
        src.mkdir()
    (good / "runs.json").write_text(json.dumps({"title": "t", "runs": [_RECORD]}))
    (bad / "runs.json").write_text(runs_json)
    line = _one_line_error(["report", "merge", str(good), str(bad), "--into",
                            str(tmp_path / "out")], capsys)
    assert str(bad / "runs.json") in line
    assert re.search(message, line), line
    assert not (tmp_path / "out" / "index.html").exists()  # refused before writing


@pytest.mark.parametrize("spec", ["~nosuchuser-nvmeh/linux", "/tmp/" + "x" * 300])
def test_a_kernel_path_that_cannot_be_looked_at_is_one_line(
        spec: str, no_vm: None, capsys: pytest.CaptureFixture[str]) -> None:
    # expanduser raised RuntimeError, exists() OSError (File name too long): tracebacks
    assert "is not a usable path" in _one_line_error(
        ["run", "--kernel", spec, "--", "true"], capsys)


@pytest.mark.parametrize("argv", [
    ["repro", "reset-storm", "--until-fail", "--budget", "nan"],
    ["repro", "reset-storm", "--until-fail", "--budget", "inf"],
    ["run", "--timeout", "nan", "--", "true"],
    ["run", "--timeout", "-1", "--", "true"],
    ["run", "--boot-timeout", "inf", "--", "true"],
], ids=lambda argv: " ".join(argv[:2] + argv[-3:-1]))
def test_seconds_that_bound_nothing_are_refused(
        argv: list[str], no_vm: None, capsys: pytest.CaptureFixture[str]) -> None:
    # nan passed repro's "budget <= 0" check and bounded nothing; argparse's one line, exit 2
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "positive, finite number of seconds" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["run", "--qemu", "debian:sid", "--", "true"],
    ["repro", "reset-storm", "--qemu", "debian:sid"],
    ["matrix", "--kernels", "debian:6.1", "--qemus", "qemu-system-x86_64,debian:sid"],
], ids=lambda argv: argv[0])
def test_an_unknown_qemu_suite_is_one_line_naming_it(
        argv: list[str], no_vm: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown QEMU 'debian:sid'" in _one_line_error(argv, capsys)


@pytest.mark.parametrize(("argv", "said"), [
    (["matrix", "--nvme-srcs", "stock,/nowhere/nvme", "reset-storm"],
     "--nvme-srcs /nowhere/nvme: not a driver source directory"),
    (["matrix", "--nvme-srcs", "stock", "reset-storm"], "name two drivers or more"),
    (["matrix", "--nvme-srcs", "stock,stock", "reset-storm"], "two drivers named alike"),
    (["repro", "reset-storm", "--nvme-srcs", "stock,/nowhere/nvme"],
     "--nvme-srcs /nowhere/nvme: not a driver source directory"),
    (["repro", "reset-storm", "--nvme-srcs", "a=stock,b=stock", "--until-fail"],
     "--nvme-srcs compares drivers on the same seeds; not with --until-fail"),
    (["matrix", "--soak-faults", "0", "reset-storm"], "--soak-faults must be at least 1"),
])
def test_a_bad_driver_list_is_one_line_naming_it(
        argv: list[str], said: str, no_vm: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert said in _one_line_error(argv, capsys)


TARGETS = [
    (["--target", "ssh://lab7", "--device", "/dev/nvme1n1"], "no user"),
    (["--target", "http://root@lab7", "--device", "/dev/nvme1n1"], "expected ssh://USER@HOST"),
    (["--target", "ssh://root@lab7:99999", "--device", "/dev/nvme1n1"], "port"),
    (["--target", "ssh://root@lab7"], "--target needs --device"),
    (["--target", "ssh://root@lab7", "--device", "/dev/sda"], "bad --device '/dev/sda'"),
    (["--target", "ssh://root@lab7", "--device", "/dev/nvme1n1p1"], "a whole NVMe namespace"),
    (["--device", "/dev/nvme1n1"], "--device and --destroy-data-on go with --target"),
    (["--target", "ssh://root@lab7", "--device", "/dev/nvme1n1", "--power-cmd", ""],
     "--power-cmd is empty"),
    (["--target", "ssh://root@lab7", "--device", "/dev/nvme1n1", "--nvme-src", "/tmp"],
     "--nvme-src /tmp: not a driver source directory"),
    (["--target", "/nonexistent/lab7.toml"], "--target /nonexistent/lab7.toml: cannot read it"),
]


@pytest.mark.parametrize(("extra", "said"), TARGETS, ids=[" ".join(e) for e, _ in TARGETS])
def test_a_bad_target_is_one_line_before_any_login(extra: list[str], said: str,
                                                   capsys: pytest.CaptureFixture[str],
                                                   no_vm: None) -> None:
    line = _one_line_error(["repro", "reset-under-load", *extra], capsys)
    assert said in line, line
