"""Each recorded kernel bug, met on the stock kernel it was established on, comes out as that
bug (repro exits 1 and names it), with the mechanism its record asks for: whatever kernel is
the suite's default, the records stay tested."""

from __future__ import annotations

import re
from pathlib import Path

from tests.harness.test_cli import harness


def test_a_silent_device_on_stock_6_1_is_the_doorbell_config_bug(tmp_path: Path) -> None:
    proc = harness("repro", "bus-master-off", "--kernel", "debian:6.1", "--seed", "3",
                   "--artifacts", str(tmp_path), timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # the mechanism: the driver's own reset requeued what the silence stranded
    assert re.search(r"seed 3: FAIL: no stable recovery: .*; \d+ request\(s\) had been "
                     r"requeued by the last reset", proc.stdout), proc.stdout
    assert ("nvmeh: known kernel bug on debian:6.1 (from 4.12, fixed in 6.8): 06c59d427017"
            in proc.stderr), proc.stderr


def test_a_reset_under_load_on_stock_5_10_is_the_stale_shadow_doorbell_bug(
        tmp_path: Path) -> None:
    proc = harness("repro", "reset-under-load", "--kernel", "debian:5.10", "--seed", "5",
                   "--artifacts", str(tmp_path), timeout=1200)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "seed 5: FAIL: controller did not return to live" in proc.stdout, proc.stdout
    # the mechanism: an I/O timeout in the middle of the reset disables the controller
    assert re.search(r"I/O \d+ QID \d+ timeout, disable controller", proc.stderr), proc.stderr
    assert ("nvmeh: known kernel bug on debian:5.10 (from 4.12, fixed in 5.16): 58847f12fe78"
            in proc.stderr), proc.stderr
