"""A soak on a real VM, as a user runs it: ``repro SCENARIO --soak-faults N`` on stock Debian
6.12 passes, through several checkpoints (loads restarted in the other region, the previous
segment's verify-only pass concluded while the next one's faults ran), and says so."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.harness.test_cli import harness, xfail_on_a_known_bug


def test_a_soak_of_the_stock_driver_passes_through_its_checkpoints(tmp_path: Path) -> None:
    art = tmp_path / "art"
    proc = harness("repro", "reset-under-load", "--kernel", "debian:6.12", "--seed", "5",
                   "--soak-faults", "16", "--soak-checkpoint", "6", "--artifacts", str(art),
                   timeout=900)
    xfail_on_a_known_bug(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"soak 1/1 seed 5: PASS in [\d.]+s, 16 recoveries, .*; 16 faults, \d+ "
                     r"verified faults an hour", proc.stdout), proc.stdout
    # three segments: two checkpoints during the soak, the last pass at its end
    for faults in ("1-6", "7-12"):
        assert re.search(rf"^ +\d+s faults {faults}: every completed write intact; \d+ faults "
                         r"so far", proc.stdout, re.MULTILINE), proc.stdout
    timeline = json.loads((art / "iter0000-seed5" / "timeline.json").read_text())
    kinds = [e["kind"] for e in timeline["events"]]
    assert kinds.count("fault") == 16 and kinds.count("recovered") == 16
    assert kinds.count("checkpoint") == 3 and kinds.count("verified") == 3
    starts = [e["detail"] for e in timeline["events"] if e["kind"] == "load_started"]
    assert len(starts) == 3  # one load a segment, in alternate regions (see the fio logs)


def _three_fault_soak(scenario: str, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """``repro SCENARIO --soak-faults 3`` on 6.12, checkpoints after 2: passed; its
    iteration's artifacts and timeline events."""
    art = tmp_path / "art"
    proc = harness("repro", scenario, "--kernel", "debian:6.12", "--seed", "5",
                   "--soak-faults", "3", "--soak-checkpoint", "2", "--artifacts", str(art),
                   timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"soak 1/1 seed 5: PASS in [\d.]+s, \d+ recoveries, .*; 3 faults",
                     proc.stdout), proc.stdout
    found = art / "iter0000-seed5"
    events = json.loads((found / "timeline.json").read_text())["events"]
    assert [e["kind"] for e in events].count("checkpoint") == 2
    return found, events


def test_a_soak_of_stalls_past_the_timeout_judges_each_recovery(tmp_path: Path) -> None:
    # A fault the driver answers with timeouts and a reset of its own: each stall must be
    # seen timing out (else nothing was tested), the log hold no trouble after each recovery
    art, events = _three_fault_soak("stall-timeout", tmp_path)
    kinds = [e["kind"] for e in events]
    assert kinds.count("fault") == 3 and kinds.count("lifted") == 3
    assert kinds.count("recovered") == 3
    log = (art / "console.log").read_text()
    assert len(re.findall(r"nvme nvme0: I/O .*QID \d+ timeout", log)) >= 3


def test_a_soak_of_namespace_churn_carries_the_namespace_from_loop_to_loop(
        tmp_path: Path) -> None:
    # Each fault is a loop of attach/detach commands against resets; the next loop starts
    # from the attachment the last one left, and hangs are reported from the first loop on
    _, events = _three_fault_soak("ns-churn-during-reset", tmp_path)
    kinds = [e["kind"] for e in events]
    assert kinds.index("hang_detection") < kinds.index("fault")
    settled = [e["detail"] for e in events if e["kind"] == "settled"]
    assert len(settled) == 3 and all(s.startswith("namespace 2 ") for s in settled)
    assert kinds.count("loop_done") == 3


def test_a_soak_of_admin_commands_against_resets_runs_a_loop_per_fault(tmp_path: Path) -> None:
    _, events = _three_fault_soak("admin-during-reset", tmp_path)
    admin = [e["detail"] for e in events if e["kind"] == "admin"]
    assert len(admin) == 3 and all(re.fullmatch(r"admin commands: [1-9]\d*", a) for a in admin)
    assert [e["kind"] for e in events].count("recovered") >= 12  # 4 to 7 resets a loop
