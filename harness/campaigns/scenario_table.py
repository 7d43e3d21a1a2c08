"""The README's table of recovery scenarios, made from the registry so that it cannot drift.

``python -m harness.campaigns.scenario_table`` prints it; ``--update README.md`` rewrites the block
between the markers. tests/unit/test_readme.py fails when the README's block is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.recovery import scenarios  # importing it registers every scenario
from harness.recovery.registry import Scenario

START = "<!-- scenarios:start -->"
END = "<!-- scenarios:end -->"
UPDATE_COMMAND = "python -m harness.campaigns.scenario_table --update README.md"


def where(scn: Scenario) -> str:
    """Which suite runs it: the CI subset (default tox) or only the whole suite (tox -e nvme)."""
    place = "CI" if scn.ci else "full suite only"
    if scn.kernel_config:
        place += "; needs a fault-injection kernel"
    if scn.host_side:
        place += "; VMs only"  # skipped on a --target: it needs QEMU's side
    return place


def _cell(text: str) -> str:
    # A pipe would end the cell; a newline would end the row.
    return " ".join(text.split()).replace("|", "\\|")


def markdown() -> str:
    """One row per scenario procedure: its name, what it checks, where it runs; the variants
    of a procedure (the same steps on another topology) share their base's row."""
    groups: dict[object, list[Scenario]] = {}
    for name in scenarios.names():
        scn = scenarios.get(name)
        groups.setdefault(scn.procedure, []).append(scn)
    rows = ["| scenario | what it checks | runs in |", "| --- | --- | --- |"]
    for group in sorted(groups.values(), key=lambda g: min(s.name for s in g)):
        base, *variants = sorted(group, key=lambda s: (len(s.name), s.name))
        names = ", ".join(f"`{s.name}`" for s in [base, *variants])
        summary = " ".join([base.summary, *(f"`{v.name}`: {v.summary}." for v in variants)])
        others = dict.fromkeys(where(v) for v in variants if where(v) != where(base))
        places = where(base) + (f" (variants: {'; '.join(others)})" if others else "") + (
            "; soaks" if base.soak is not None else "")  # repro --soak takes it
        rows.append(f"| {names} | {_cell(summary)} | {places} |")
    return "\n".join(rows) + "\n"


def _bounds(text: str) -> tuple[int, int]:
    """Where the block's content starts and ends in ``text`` (between the marker lines)."""
    start = text.find(START)
    end = text.find(END, start + 1)
    if start < 0 or end < 0:
        raise ValueError(f"no {START} ... {END} block")
    return text.index("\n", start) + 1, end


def block(text: str) -> str:
    """The content between the markers of ``text``."""
    start, end = _bounds(text)
    return text[start:end]


def replace(text: str, table: str) -> str:
    """``text`` with the content between its markers replaced by ``table``."""
    start, end = _bounds(text)
    return text[:start] + table + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.campaigns.scenario_table",
                                     description="print the README's scenario table")
    parser.add_argument("--update", metavar="FILE", type=Path,
                        help="rewrite the block between the scenario markers of FILE")
    args = parser.parse_args(argv)
    table = markdown()
    if args.update is None:
        sys.stdout.write(table)
        return 0
    try:
        text = args.update.read_text()
        new = replace(text, table)
    except (OSError, ValueError) as exc:
        print(f"{args.update}: {exc}", file=sys.stderr)
        return 1
    if new != text:
        args.update.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
