"""A patch against its base: which differences are beyond the base's own noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.campaigns.compare import SeedFigures, flagged, side_by_side
from harness.campaigns.matrix import Cell, Status, comparisons, drivers
from harness.errors import HarnessError


def seeds(*per_seed: tuple[list[float], list[float], list[float]]) -> list[SeedFigures]:
    return [SeedFigures(5 + i, *figures) for i, figures in enumerate(per_seed)]


# matrix --nvme-srcs base=STOCK,slower=STOCK+slower-reset.patch --iterations 2 on 6.12,
# reset-under-load seeds 5 and 6, three runs: back to live, writes again, throughput back
BASE = seeds(([0.040, 0.043, 0.035, 0.046, 0.042], [0.022, 0.064, 0.020, 0.019, 0.025], [1.6]),
             ([0.044, 0.039, 0.043, 0.030, 0.041], [0.023, 0.023, 0.016, 0.025, 0.027], [1.6]))
SLOWER = seeds(([0.454, 0.463, 0.463, 0.458, 0.458], [0.028, 0.021, 0.023, 0.018, 0.018],
                [1.5]),
               ([0.472, 0.459, 0.469, 0.452, 0.458], [0.069, 0.029, 0.024, 0.037, 0.017],
                [1.5]))
BASE_AGAIN = [
    seeds(([0.043, 0.041, 0.037, 0.036, 0.040], [0.020, 0.020, 0.033, 0.018, 0.024], [1.7]),
          ([0.043, 0.039, 0.040, 0.040, 0.034], [0.020, 0.017, 0.022, 0.036, 0.031], [1.5])),
    seeds(([0.045, 0.042, 0.032, 0.032, 0.040], [0.016, 0.039, 0.021, 0.024, 0.014], [1.7]),
          ([0.039, 0.040, 0.038, 0.038, 0.038], [0.020, 0.023, 0.043, 0.034, 0.027], [1.6])),
]


def test_a_reset_several_times_slower_is_flagged_and_the_same_driver_is_not():
    # throughput back: 1.5 s against 1.6 s on both seeds, separated but under fio's
    # one-second windows (flagged once by an earlier rule)
    assert flagged(BASE, SLOWER) == ["back to live"]
    for again in BASE_AGAIN:
        assert flagged(BASE, again) == [] and flagged(again, BASE) == []
        assert flagged(again, SLOWER) == ["back to live"]


def test_overlapping_seeds_are_noise_whatever_the_medians():
    # two of the other's seeds faster than the base's slowest: not separated
    other = seeds(([0.2, 0.21], [], []), ([0.04, 0.041], [], []))
    assert flagged(BASE, other) == []


def test_differences_under_the_monitors_step_are_not_flagged():
    base = seeds(([0.010, 0.011], [], []), ([0.012, 0.012], [], []))
    assert flagged(base, seeds(([0.030, 0.031], [], []), ([0.030, 0.032], [], []))) == []
    assert flagged(base, seeds(([0.080, 0.081], [], []), ([0.080, 0.082], [], []))) \
        == ["back to live"]


def test_one_seed_is_printed_but_never_flagged():
    one, slow = seeds(([0.06, 0.07], [], [])), seeds(([0.6, 0.7], [], []))
    assert flagged(one, slow) == []
    text = side_by_side("reset-under-load", "debian:6.12", ("stock", "slower"),
                        ("PASS 65ms", "PASS 650ms"), one, slow)
    assert "one seed: no noise to measure" in text
    assert "10.0x" in text and "beyond the noise" not in text


def test_side_by_side_names_both_and_marks_a_verdict_that_changed():
    text = side_by_side("reset-under-load", "debian:6.12", ("stock", "slower"),
                        ("PASS 41ms", "FAIL"), BASE, SLOWER)
    lines = text.splitlines()
    assert lines[0] == "reset-under-load on debian:6.12, seeds 5, 6 (ms: p50/p99/max of " \
                       "every recovery)"
    assert "stock" in lines[1] and "slower" in lines[1]
    assert lines[2].endswith("<- not the same")
    [live] = [ln for ln in lines if "back to live" in ln]
    assert "41/46/46" in live and "458/472/472" in live and "11.0x" in live
    assert live.endswith("(the base's p10-p90 30-44)  <- beyond the noise")


def test_comparisons_pair_each_driver_with_the_base_on_the_same_kernel():
    def cell(col: str, drv: str, figures: list[SeedFigures]) -> Cell:
        return Cell(f"{col} {drv}", "6.12.0-1-amd64", "reset-under-load", Status.PASS,
                    figures=figures, driver=drv)
    # "old stock" ends in the base's name: a driver is its own, not read off the column
    cells = [cell("debian:6.12", "stock", BASE), cell("debian:6.12", "old stock", SLOWER),
             cell("debian:6.1", "stock", BASE), cell("debian:6.1", "old stock", BASE)]
    text, found = comparisons(cells, ["stock", "old stock"])
    assert found == 1
    assert "reset-under-load on debian:6.12," in text and "reset-under-load on debian:6.1," in text


def test_drivers_are_named_and_checked_before_anything_boots(tmp_path: Path):
    src = tmp_path / "nvme-fix"
    src.mkdir()
    (src / "Makefile").write_text("")
    (src / "pci.c").write_text("")
    assert drivers(f"stock,{src}") == [("stock", None), ("nvme-fix", src)]
    assert drivers(f"base={src},patch={src}") == [("base", src), ("patch", src)]
    with pytest.raises(HarnessError, match=r"--nvme-srcs .*/nowhere: not a driver source"):
        drivers(f"stock,{tmp_path / 'nowhere'}")
    with pytest.raises(HarnessError, match="name two drivers or more"):
        drivers("stock")
    with pytest.raises(HarnessError, match="named alike"):
        drivers(f"{src},{src}")
