"""The README stays short, and its scenario table says what the registry says."""

from __future__ import annotations

from harness import paths
from harness.campaigns import scenario_table
from harness.recovery import scenarios

README = paths.PROJECT / "README.md"
MAX_LINES = 250  # past this the README stops being read; stories go to known-bugs/, docs/


def test_the_scenario_table_matches_the_registry() -> None:
    assert scenario_table.block(README.read_text()) == scenario_table.markdown(), (
        "README.md's scenario table is stale: run "
        f"`{scenario_table.UPDATE_COMMAND}`")


def test_the_table_names_every_scenario_once() -> None:
    rows = scenario_table.markdown().splitlines()[2:]
    named = [name for row in rows for name in row.split(" | ")[0].split("`")[1::2]]
    assert sorted(named) == scenarios.names()


def test_variants_of_a_procedure_share_their_base_row() -> None:
    row = next(r for r in scenario_table.markdown().splitlines()
               if r.startswith("| `reset-under-load`"))
    assert row.startswith("| `reset-under-load`, `reset-under-load-2ns`, ")
    assert "`reset-under-load-2cpu`: " in row and row.endswith(
        "| CI (variants: full suite only); soaks |")


def test_update_rewrites_only_the_block() -> None:
    text = f"intro\n{scenario_table.START}\nold row\n{scenario_table.END}\nrest\n"
    new = scenario_table.replace(text, "| new |\n")
    assert new == f"intro\n{scenario_table.START}\n| new |\n{scenario_table.END}\nrest\n"
    assert scenario_table.block(new) == "| new |\n"


def test_a_pipe_in_a_summary_does_not_split_its_cell() -> None:
    assert scenario_table._cell("a | b\n c") == "a \\| b c"


def test_the_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines < MAX_LINES, (
        f"README.md has {lines} lines (limit {MAX_LINES - 1}): move stories to "
        "known-bugs/<bug>/README.md and long explanations to docs/")
