"""The live status line of a campaign: rewritten in place on a terminal, silent in CI logs."""

from __future__ import annotations

import io

from harness.progress import RunProgress


def test_a_terminal_sees_one_line_rewritten_with_the_phase() -> None:
    out = io.StringIO()
    progress = RunProgress("reset-storm", 3, out, live=True)
    progress.begin(41)
    progress.event("load_started", "load0 /dev/nvme0n1")
    progress.event("state", "nvme0 resetting")  # not a phase: nothing new
    progress.event("fault", "reset_controller nvme0")
    progress.end()
    frames = out.getvalue().split("\r")
    assert frames[1].startswith("[reset-storm 1/3, 0s] seed 41: booting")
    assert "seed 41: load running" in frames[2]
    assert "seed 41: injecting reset_controller nvme0" in frames[3]
    assert len(frames) == 6 and frames[4].strip() == "" and frames[5] == ""  # cleared
    progress.begin(42)
    assert "[reset-storm 2/3, 0s, ~0s left] seed 42: booting" in out.getvalue()


def test_a_ci_log_gets_nothing_between_iterations() -> None:
    out = io.StringIO()
    progress = RunProgress("reset-storm", None, out, live=False)
    progress.begin(1)
    progress.event("fault", "reset_controller nvme0")
    progress.end()
    assert out.getvalue() == ""
