"""Fuzzed options, topologies and runs.json: each is accepted or refused with one BadInput line
(argparse's usage error on the command line), within a second, never another exception."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis", reason="pip install -e '.[dev]'")

from hypothesis import given, settings
from hypothesis import strategies as st

from harness import cli
from harness.errors import BadInput
from harness.machine.topology import Namespace, Topology, parse_size
from harness.report import merge

# Bounded, so that the unit suite stays fast; no example database: each run draws afresh.
FUZZ = settings(max_examples=150, deadline=1000, database=None)

# Numbers as people mistype them: superscripts and other scripts' digits (str.isdigit() is
# true of both), far too large, thousands of digits (int() refuses over 4300).
_DIGITS = st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=3)
NUMBERS = st.one_of(st.integers(0, 20).map(str), st.integers(10**9, 10**25).map(str),
                    st.integers(4000, 5000).map("9".__mul__), _DIGITS)
SIZES = st.tuples(NUMBERS, st.sampled_from(["", "K", "M", "G", "T", "g", "GiB", "TB", "\u212a",
                                            "X", " M"])).map("".join)
NAMESPACES = st.lists(st.one_of(SIZES, NUMBERS, st.sampled_from(["detached", "512", "4096"]),
                                st.text(max_size=5)), min_size=1, max_size=3).map(":".join)
KEYS = st.sampled_from(["controllers", "namespaces", "io_queues", "io-queues", "cpus", "memory",
                        "kernel_args", "subsystem", "colour", ""])
VALUES = st.one_of(NUMBERS, SIZES, st.lists(NAMESPACES, min_size=1, max_size=3).map("+".join),
                   st.sampled_from(["on", "off", "maybe"]), st.text(max_size=10))
ITEMS = st.tuples(KEYS, st.sampled_from(["=", "=", " = ", ":", ""]), VALUES).map("".join)
TOPOLOGIES = st.lists(ITEMS | st.text(max_size=10), max_size=4).map(",".join) | st.text()
OPTIONS = st.one_of(NUMBERS, st.floats().map(str), st.text(max_size=20))


@contextlib.contextmanager
def _within_a_second() -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < 1


def _accepted_or_refused(parse: Callable[[], object]) -> None:
    with _within_a_second():
        try:
            parse()
        except BadInput as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(TOPOLOGIES)
def test_fuzzed_topology_parses_or_is_refused(text: str) -> None:
    _accepted_or_refused(lambda: Topology.parse(text))


@FUZZ
@given(st.sampled_from(["controllers", "namespaces", "io_queues", "cpus", "memory"]),
       NUMBERS | SIZES | st.lists(NAMESPACES, min_size=1, max_size=3).map("+".join))
def test_fuzzed_count_or_size_parses_or_is_refused(key: str, value: str) -> None:
    _accepted_or_refused(lambda: Topology.parse(f"{key}={value}"))


@FUZZ
@given(st.one_of(NAMESPACES, st.text()))
def test_fuzzed_namespace_parses_or_is_refused(text: str) -> None:
    _accepted_or_refused(lambda: Namespace.parse(text))


@FUZZ
@given(st.one_of(SIZES, st.text()))
def test_fuzzed_size_parses_or_is_refused(text: str) -> None:
    _accepted_or_refused(lambda: parse_size(text))


@FUZZ
@given(st.integers(), st.integers(), st.integers(), st.integers())
def test_fuzzed_marker_counts_build_or_are_refused(
        controllers: int, namespaces: int, io_queues: int, cpus: int) -> None:
    """The pytest marker's keywords (``nvme(controllers=...)``) reach Topology.build as ints."""
    _accepted_or_refused(lambda: Topology.build(controllers, namespaces, io_queues, cpus))


PARSER = cli.build_parser()


@FUZZ
@given(seed=OPTIONS, iterations=OPTIONS, budget=OPTIONS, kernel=OPTIONS, topology=TOPOLOGIES)
def test_fuzzed_options_parse_or_are_refused_in_one_line(
        seed: str, iterations: str, budget: str, kernel: str, topology: str) -> None:
    """What the command line gives the commands: argparse's usage error (its last line is
    the one naming the culprit), or options whose topology the commands parse first."""
    argv = ["repro", f"--seed={seed}", f"--iterations={iterations}", f"--budget={budget}",
            f"--kernel={kernel}", f"--topology={topology}", "ns-churn-during-reset"]
    err = io.StringIO()
    with _within_a_second():
        try:
            with contextlib.redirect_stderr(err):
                args = PARSER.parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 2
            assert err.getvalue().splitlines()[-1].startswith("python -m harness repro: error: ")
        else:
            _accepted_or_refused(lambda: cli._topology(args))


# runs.json records: each field valid or any JSON value, sometimes left out or extra.
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
FIELDS = {"name": st.text(max_size=10), "status": st.sampled_from(["PASS", "FAIL", "KNOWN",
                                                                     "SKIP", "ERROR", "pass"]),
          "duration_s": st.floats(), "artifacts": st.none() | st.text(max_size=10),
          "properties": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
          "message": st.text(max_size=10), "recovery_ms_max": st.none() | st.floats(),
          "started": st.floats() | st.integers(), "files": st.lists(st.text(max_size=5))}
RECORDS = st.fixed_dictionaries({}, optional={
    **{key: st.one_of(valid, JSON) for key, valid in FIELDS.items()}, "colour": JSON})


@settings(FUZZ, max_examples=40)
@given(st.one_of(st.lists(RECORDS, max_size=3).map(lambda runs: {"title": "t", "runs": runs}),
                 JSON))
def test_fuzzed_runs_json_merges_or_is_refused(data: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp, _within_a_second():
        src = Path(tmp) / "src"
        src.mkdir()
        (src / "runs.json").write_text(json.dumps(data))
        with contextlib.suppress(BadInput):
            merge(Path(tmp) / "out", [src])
