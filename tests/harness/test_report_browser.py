"""The HTML report renders in a real browser: headless Chromium (Debian's package, installed
by ``doctor --install --browser``) takes a screenshot of a report built from recorded
iterations, and the screenshot shows the status colours of the table rows and the plots."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.machine.doctor import browser_binary
from harness.report import ReportDir, RunRecord, Status

DATA = Path(__file__).resolve().parents[1] / "unit" / "data"
ROW = {Status.PASS: (221, 255, 221), Status.FAIL: (255, 187, 187),
       Status.ERROR: (255, 221, 153), Status.KNOWN: (238, 238, 255)}
IOPS_LINE = (31, 119, 180)  # matplotlib's first colour: the load's IOPS


def _report(tmp_path: Path) -> Path:
    report = ReportDir(tmp_path / "report", "repro ns-churn-during-reset")
    for i, (status, message) in enumerate([
            (Status.PASS, ""),
            (Status.FAIL, "lost or corrupted data: verify-only pass: EILSEQ"),
            (Status.KNOWN, "hang: the guest kernel reported a hung task (839a40d1e730)"),
            (Status.ERROR, "QEMU exited with status 1 during boot")]):
        art = tmp_path / f"iter{i}"
        art.mkdir()
        if status is not Status.ERROR:
            shutil.copy(DATA / "timeline-ns-churn-pass.json", art / "timeline.json")
        report.add(RunRecord(f"ns-churn-during-reset[seed {i}]", status, 60.0,
                             {"kernel_release": "6.1.0-56-amd64"}, message, artifacts=art,
                             reproduce=f"python -m harness repro ns-churn-during-reset "
                                       f"--seed {i}"))
    return report.path / "index.html"


def _count(img: Image.Image, colour: tuple[int, int, int], tolerance: int = 6) -> int:
    """Pixels of ``colour`` (within ``tolerance`` per channel) in ``img``."""
    pixels = np.asarray(img.convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.array(colour)) <= tolerance).all(axis=2).sum())


def test_the_report_renders_its_table_and_plots_in_chromium(tmp_path: Path) -> None:
    browser = browser_binary()
    if browser is None:
        pytest.fail("no Chromium: run `python -m harness doctor --install --browser`")
    page = _report(tmp_path)
    shot = tmp_path / "report.png"  # kept with the test's tmp dir when it fails
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,2600",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    img = Image.open(shot)
    assert img.size == (1100, 2600)
    for status, colour in ROW.items():  # each status row of the summary table, in its colour
        assert _count(img, colour) > 2000, f"no {status.name} row in the screenshot"
    # three plots (the ERROR run has no timeline): the IOPS line drawn in each
    assert _count(img, IOPS_LINE, tolerance=20) > 3 * 400, "the plots did not render"
