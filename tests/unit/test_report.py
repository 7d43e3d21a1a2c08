"""The report directory: JUnit, KCIDB-shaped summary, reproduce.sh and the HTML page, built
from recorded timelines of real iterations (tests/unit/data)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import report as report_mod
from harness.errors import BadInput
from harness.report import (
    MARKED_ONE_BY_ONE,
    ReportDir,
    RunRecord,
    Status,
    _mark_faults,
    durations,
    merge,
    plot_timeline,
)

DATA = Path(__file__).parent / "data"
PROPS = {"kernel": "debian:6.1", "kernel_release": "6.1.0-56-amd64", "qemu": "7.2.22",
         "accel": "tcg", "seed": "1", "topology": "cpus=1,mem=1G,nvme=[1x256M]"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _artifacts(tmp_path: Path, name: str, timeline: str | None) -> Path:
    art = tmp_path / "art" / name
    art.mkdir(parents=True)
    if timeline:
        shutil.copy(DATA / timeline, art / "timeline.json")
    (art / "console.log").write_text("[    1.0] nvme nvme0: 1/0/0 default/read/poll queues\n")
    return art


@pytest.fixture
def report(tmp_path: Path) -> ReportDir:
    rep = ReportDir(tmp_path / "report", "repro ns-churn-during-reset")
    rep.add(RunRecord("ns-churn-during-reset[seed 1]", Status.PASS, 64.7, PROPS,
                    recovery_ms_max=111.0,
                    artifacts=_artifacts(tmp_path, "seed1", "timeline-ns-churn-pass.json"),
                    reproduce="python -m harness repro ns-churn-during-reset --seed 1",
                    started=1795326000.0))
    rep.add(RunRecord("ns-churn-during-reset[seed 20261121]", Status.KNOWN, 62.0,
                    {**PROPS, "seed": "20261121"},
                    message="hang: the guest kernel reported a hung task: INFO: task hung in "
                            "blk_mq_freeze_queue_wait",
                    detail="nvme_wait_freeze+0x31/0x50 [nvme_core]\n nvme_reset_work",
                    artifacts=_artifacts(tmp_path, "seed20261121", "timeline-ns-churn-hang.json"),
                    reproduce="python -m harness repro ns-churn-during-reset --seed 20261121"))
    rep.add(RunRecord("ns-churn-during-reset[seed 3]", Status.ERROR, 3.0, PROPS,
                    message="QEMU exited with status 1 during boot"))
    rep.add(RunRecord("lockdep-scenario", Status.SKIP, 0.0, PROPS,
                    message="needs CONFIG_PROVE_LOCKING=y"))
    return rep


def test_junit_keeps_failures_errors_and_skips_apart_with_the_run_properties(
        report: ReportDir) -> None:
    suite = ET.parse(report.path / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("4", "1", "1", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.name for r in report.runs]
    props = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert props["kernel_release"] == "6.1.0-56-amd64" and props["qemu"] == "7.2.22"
    assert props["seed"] == "1" and props["accel"] == "tcg" and "topology" in props
    assert props["reproduce"].endswith("--seed 1")
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("type") == "known kernel bug"
    assert "nvme_wait_freeze" in (failure.text or "")
    assert cases[2].find("error") is not None and cases[3].find("skipped") is not None


def test_summary_records_are_kcidb_tests(report: ReportDir) -> None:
    summary = json.loads((report.path / "summary.json").read_text())
    assert summary["version"]["major"] == 4
    tests = summary["tests"]
    assert [t["status"] for t in tests] == ["PASS", "FAIL", "ERROR", "SKIP"]
    assert [t["waived"] for t in tests] == [False, True, False, False]  # KNOWN: waived FAIL
    assert all(t["origin"] == "nvmeh" and t["path"] == "nvme.ns-churn-during-reset"
               for t in tests[:3])
    assert len({t["id"] for t in tests}) == 4
    assert tests[0]["start_time"].startswith("2026-11-22T")
    assert tests[0]["misc"]["seed"] == "1" and tests[0]["misc"]["recovery_ms_max"] == 111.0
    names = {f["name"] for f in tests[0]["output_files"]}
    assert {"timeline.json", "console.log", "reproduce.sh"} <= names


def test_each_test_with_artifacts_gets_its_reproduce_script(report: ReportDir) -> None:
    script = report.runs[1].artifacts / "reproduce.sh"  # type: ignore[operator]
    text = script.read_text()
    assert script.stat().st_mode & 0o111
    assert text.startswith("#!/bin/sh\n")
    assert "exec python -m harness repro ns-churn-during-reset --seed 20261121\n" in text


def test_html_has_the_table_and_a_plot_per_timeline_with_iops(report: ReportDir) -> None:
    page = (report.path / "index.html").read_text()
    assert page.count("<tr class=") == 4
    assert re.search(r"<tr class=\"known\">.*seed 20261121.*KNOWN", page)
    assert "<tr class=\"ERROR\">" in page and "QEMU exited with status 1" in page
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 2  # the runs with a timeline (the hang's: its faults, no IOPS)
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    assert "reproduce: <code>python -m harness repro" in page


def test_the_report_is_rewritten_after_every_test(tmp_path: Path) -> None:
    rep = ReportDir(tmp_path / "r", "t")
    rep.add(RunRecord("a", Status.PASS, 1.0))
    assert ET.parse(rep.path / "junit.xml").getroot().get("tests") == "1"
    rep.add(RunRecord("b", Status.FAIL, 1.0, message="lost or corrupted data"))
    assert ET.parse(rep.path / "junit.xml").getroot().get("tests") == "2"


def test_plot_marks_faults_and_recoveries() -> None:
    timeline = json.loads((DATA / "timeline-ns-churn-pass.json").read_text())
    png = plot_timeline(timeline, "ns-churn-during-reset seed 1")
    assert png.startswith(PNG_MAGIC) and len(png) > 5000
    assert plot_timeline({"events": [], "iops": {}}, "empty").startswith(PNG_MAGIC)


def _png_height(png: bytes) -> int:
    return int.from_bytes(png[20:24], "big")  # IHDR: width, then height


def test_plot_has_a_latency_panel_when_the_timeline_has_latencies() -> None:
    # reset-under-load seed 7 on 6.1: 4 resets, write latency up to 236 ms around them
    timeline = json.loads((DATA / "timeline-reset-under-load-latency.json").read_text())
    assert max(v for _, v in timeline["latency_ms"]["load0"]) > 200
    with_latency = plot_timeline(timeline, "t")
    without = plot_timeline({**timeline, "latency_ms": {}}, "t")
    assert _png_height(with_latency) > _png_height(without)


def test_a_soaks_plot_shows_the_distribution_of_its_recovery_times() -> None:
    timeline = json.loads((DATA / "timeline-reset-under-load-latency.json").read_text())
    few = plot_timeline(timeline, "t")  # an iteration's 4 recoveries: no histogram
    many = plot_timeline({**timeline, "recovery_s": [0.05 + i / 1000 for i in range(300)]}, "t")
    assert _png_height(many) > _png_height(few)
    assert abs(len(many) - len(plot_timeline({**timeline, "recovery_s": [
        0.05 + i / 10000 for i in range(3000)]}, "t"))) < len(many) / 2  # ten times the faults


def test_a_soaks_faults_are_counted_per_time_bin_instead_of_drawn_one_by_one() -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    def marked(n: int) -> tuple[int, list[str]]:
        events = [ev for i in range(n) for ev in ({"kind": "fault", "t": 10.0 + i / 2},
                                                  {"kind": "recovered", "t": 10.04 + i / 2})]
        fig, ax = plt.subplots()
        try:
            _mark_faults(ax, events)
            return len(ax.lines), [a.get_ylabel() for a in fig.axes[1:]]
        finally:
            plt.close(fig)

    assert marked(4) == (8, [])  # an iteration's: a line per fault and per recovery
    assert marked(MARKED_ONE_BY_ONE) == (2 * MARKED_ONE_BY_ONE, [])
    assert marked(3000) == (0, ["faults per 15 s"])  # 1,500 s in 100 bins


def test_a_campaign_plots_its_first_passes_and_every_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_mod, "PLOTTED_PASSES", 1)
    rep = ReportDir(tmp_path / "r", "campaign")
    for i, status in enumerate([Status.FAIL, Status.PASS, Status.PASS, Status.KNOWN]):
        rep.add(RunRecord(f"run{i}", status, 1.0, artifacts=_artifacts(
            tmp_path, f"run{i}", "timeline-ns-churn-pass.json")))
    assert [bool(r.plot) for r in rep.runs] == [True, True, False, True]


def test_artifacts_are_listed_once_when_a_run_joins(report: ReportDir) -> None:
    run = report.runs[0]
    assert set(run.files) == {"timeline.json", "console.log", "reproduce.sh"}
    assert run.artifacts is not None
    (run.artifacts / "later.txt").write_text("written after the run joined\n")
    report.write()
    tests = json.loads((report.path / "summary.json").read_text())["tests"]
    assert "later.txt" not in {f["name"] for f in tests[0]["output_files"]}


def test_artifacts_inside_the_report_dir_are_linked_relative_to_it(tmp_path: Path) -> None:
    rep = ReportDir(tmp_path / "report", "repro reset-storm")
    inside = _artifacts(tmp_path / "report", "seed1", None)  # report/art/seed1
    outside = _artifacts(tmp_path, "seed2", None)
    rep.add(RunRecord("reset-storm[seed 1]", Status.FAIL, 1.0, artifacts=inside,
                      reproduce="python -m harness repro reset-storm --seed 1"))
    rep.add(RunRecord("reset-storm[seed 2]", Status.PASS, 1.0, artifacts=outside))
    # a CI job uploads the report dir, someone downloads it elsewhere: its links still work
    moved = Path(shutil.move(rep.path, tmp_path / "downloaded"))
    case = ET.parse(moved / "junit.xml").getroot().findall("testcase")
    props = [{p.get("name"): p.get("value") for p in c.iter("property")} for c in case]
    assert [p["artifacts"] for p in props] == ["art/seed1", str(outside.resolve())]
    assert (moved / props[0]["artifacts"] / "reproduce.sh").is_file()
    urls = [{f["name"]: f["url"] for f in t["output_files"]}
            for t in json.loads((moved / "summary.json").read_text())["tests"]]
    assert urls[0]["console.log"] == "art/seed1/console.log"
    assert urls[1]["console.log"] == (outside / "console.log").resolve().as_uri()
    hrefs = re.findall(r"artifacts: <a href='([^']+)'", (moved / "index.html").read_text())
    assert hrefs == ["art/seed1/", outside.resolve().as_uri() + "/"]
    runs = json.loads((moved / report_mod.RUNS).read_text())["runs"]
    assert [r["artifacts"] for r in runs] == ["art/seed1", str(outside.resolve())]


def test_merging_shards_keeps_every_test_and_its_plot(report: ReportDir, tmp_path: Path) -> None:
    other = ReportDir(tmp_path / "shard2", "repro reset-under-load")
    other.add(RunRecord("reset-under-load[seed 5]", Status.FAIL, 50.0, PROPS,
                        message="lost or corrupted data: verify-only pass: EILSEQ"))
    merged = merge(tmp_path / "merged", [report.path, other.path])
    assert [r.name for r in merged.runs] == [r.name for r in report.runs + other.runs]
    assert merged.title == "repro ns-churn-during-reset + repro reset-under-load"
    assert merged.runs[0] == report.runs[0]  # round trip: properties, paths, plot
    page = (merged.path / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and page.count("<tr class=") == 5
    suite = ET.parse(merged.path / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("5", "2")


def _shard(path: Path, *tests: str) -> ReportDir:
    """A pytest shard's report dir, its tests' artifacts in its artifacts/."""
    shard = ReportDir(path, f"pytest {path.name}")
    for test in tests:
        art = path / "artifacts" / test
        art.mkdir(parents=True)
        (art / "console.log").write_text("[    1.0] nvme nvme0: 1/0/0 default/read/poll\n")
        shard.add(RunRecord(f"tests/test_recovery.py::{test}", Status.PASS, 1.0, artifacts=art,
                            reproduce=f"pytest -k {test}"))
    return shard


def test_merging_copies_the_shards_artifacts_so_the_merged_report_holds_them(
        tmp_path: Path) -> None:
    first = _shard(tmp_path / "1" / "report", "reset_storm", "hot_remove")
    second = _shard(tmp_path / "2" / "report", "vm_pause")  # the same name: numbered
    outside = _artifacts(tmp_path, "elsewhere", None)
    second.add(RunRecord("repro bus-master-off[seed 1]", Status.KNOWN, 1.0, artifacts=outside))
    merged = merge(tmp_path / "merged", [first.path, second.path])
    shutil.rmtree(tmp_path / "1")  # the shards are gone, the merged report is downloaded
    shutil.rmtree(tmp_path / "2")
    moved = Path(shutil.move(merged.path, tmp_path / "downloaded"))
    runs = json.loads((moved / report_mod.RUNS).read_text())["runs"]
    links = [r["artifacts"] for r in runs]
    assert links == ["artifacts/report-1/reset_storm", "artifacts/report-1/hot_remove",
                     "artifacts/report-2/vm_pause", str(outside.resolve())]
    for link in links[:3]:
        assert (moved / link / "console.log").is_file()
        assert "exec pytest -k" in (moved / link / "reproduce.sh").read_text()
    page = (moved / "index.html").read_text()
    assert re.findall(r"artifacts: <a href='([^']+)/'", page)[:3] == links[:3]
    again = merge(moved, [moved])  # merging a merged report again changes nothing
    assert [r.as_dict(again.absolute) for r in again.runs] == runs


def test_merging_shards_inside_the_merged_report_links_to_them_in_place(tmp_path: Path) -> None:
    # tox -e nightly: reports/nightly/debian-6.1 and the others merged into reports/nightly
    shard = _shard(tmp_path / "nightly" / "debian-6.1", "reset_storm")
    merge(tmp_path / "nightly", [shard.path])
    runs = json.loads((tmp_path / "nightly" / report_mod.RUNS).read_text())["runs"]
    assert [r["artifacts"] for r in runs] == ["debian-6.1/artifacts/reset_storm"]
    assert not (tmp_path / "nightly" / "artifacts").exists()  # nothing copied


def test_merging_into_a_tests_own_artifacts_is_refused_in_one_line(tmp_path: Path) -> None:
    shard = _shard(tmp_path / "report", "reset_storm")
    into = tmp_path / "report" / "artifacts" / "reset_storm" / "merged"
    with pytest.raises(BadInput, match=r"^cannot merge into .*merged: it is inside .*"
                                       r"reset_storm, the artifacts of .*::reset_storm in "):
        merge(into, [shard.path])


def test_merging_something_that_is_not_a_report_dir_names_it(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"not-a-report is not a report dir"):
        merge(tmp_path / "merged", [tmp_path / "not-a-report"])


def test_durations_for_pytest_split_come_from_pytest_runs_only(tmp_path: Path) -> None:
    rep = ReportDir(tmp_path / "r", "pytest")
    rep.add(RunRecord("tests/test_recovery.py::test_scenario[reset-storm]", Status.PASS, 61.25))
    rep.add(RunRecord("tests/test_recovery.py::test_scenario[vm-pause]", Status.KNOWN, 40.0))
    rep.add(RunRecord("reset-storm[seed 5]", Status.PASS, 55.0))  # a repro iteration
    assert durations([rep.path]) == {"tests/test_recovery.py::test_scenario[reset-storm]": 61.25,
                                     "tests/test_recovery.py::test_scenario[vm-pause]": 40.0}
