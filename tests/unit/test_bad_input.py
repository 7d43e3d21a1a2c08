"""Bad input gets one line naming the culprit (BadInput, exit 125), quickly: the exact inputs
that once gave a traceback, an OverflowError or minutes of building a huge list."""

from __future__ import annotations

import time
from typing import Any, NoReturn

import pytest

from harness import cli
from harness.errors import EXIT_HARNESS, BadInput
from harness.topology import Topology


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
