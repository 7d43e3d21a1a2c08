"""Reports people can act on: one directory per run, readable by CI, KernelCI and a browser.

``--report-dir DIR`` (``repro``, ``matrix``) writes, and rewrites after every test, so that a
run cut short still leaves a report:

- ``junit.xml``: one testcase per test, with the run's properties (kernel release, QEMU
  version, accelerator, seed, topology, the hash of a ``--nvme-src`` driver);
- ``summary.json``: one record per test shaped after KernelCI's KCIDB test records (a known
  kernel bug is a FAIL with ``waived``);
- ``index.html``: self-contained (plots embedded): a summary table, then per test the IOPS and
  write latency of each load over time with the faults and the recovery windows marked;
- ``reproduce.sh`` in each test's artifacts directory: the command that re-runs it.

The tests' artifacts go to the report dir's ``artifacts/`` unless the run was told another
place (:func:`artifacts_root`). Artifacts inside the report dir are linked relative to it, so
that the directory can be moved or downloaded whole, its links working; others by their
absolute path.

Statuses keep apart what the kernel did (FAIL) from what the harness could not do (ERROR):
only FAIL means the driver is at fault; KNOWN is a failure recorded as a kernel bug.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import io
import json
import os
import shlex
import shutil
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import BadInput, HarnessError
from harness.reading.verdict import Status as Status  # the statuses a report gives
from harness.util import percentile

ORIGIN = "nvmeh"  # the KCIDB origin of the records
RUNS = "runs.json"  # every record in full, for merging report dirs
PLOTTED_PASSES = 20  # a long campaign plots its first passes and every run that did not pass
ARTIFACTS = "artifacts"  # the folder of a report dir that holds its runs' artifacts by default


def artifacts_root(given: Path | None, report_dir: Path | None) -> Path | None:
    """Where a run keeps its tests' artifacts: the directory given, else the report dir's
    ``artifacts/`` (a report kept by CI then keeps what it links to); None if neither."""
    if given is not None:
        return given
    return report_dir / ARTIFACTS if report_dir is not None else None


def link(path: Path, base: Path) -> str:
    """How the report in ``base`` (absolute) names ``path``: relative to ``base`` when inside
    it, else absolute."""
    path = Path(os.path.normpath(path.absolute()))  # no "..": a link never leaves ``base``
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)


def _url(path: Path, base: Path) -> str:
    """:func:`link` as a URL: a relative reference, or a file: URI when outside ``base``."""
    named = link(path, base)
    return Path(named).as_uri() if os.path.isabs(named) else urllib.parse.quote(named)


@dataclass(frozen=True)
class RunRecord:
    """One test's outcome: a scenario iteration, a matrix cell, a pytest test."""

    name: str
    status: Status
    duration_s: float
    properties: dict[str, str] = field(default_factory=dict)  # kernel, qemu, accel, seed...
    message: str = ""  # why it did not pass
    detail: str = ""  # the evidence: stack traces, kernel log, fio's errors
    recovery_ms_max: float | None = None
    artifacts: Path | None = None
    reproduce: str = ""  # a shell command that re-runs exactly this test
    started: float = 0.0  # Unix time
    plot: str = ""  # base64 PNG of its timeline, made when it joined a report
    files: tuple[str, ...] = ()  # its artifacts (relative paths), listed when it joined

    def as_dict(self, base: Path | None = None) -> dict[str, Any]:
        """As JSON; with ``base``, artifacts inside it relative to it (:func:`link`)."""
        out = dataclasses.asdict(self)
        out["status"] = self.status.name
        out["artifacts"] = (None if self.artifacts is None else
                            link(self.artifacts, base) if base else str(self.artifacts))
        out["files"] = list(self.files)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path | None = None) -> RunRecord:
        """Of :meth:`as_dict`'s JSON; relative artifacts are below ``base`` if given."""
        artifacts = Path(data["artifacts"]) if data["artifacts"] else None
        if artifacts is not None and base is not None:
            # an absolute one stays as it is; no "..": whether it is inside ``base`` is lexical
            artifacts = Path(os.path.normpath(base / artifacts))
        return cls(**{**data, "status": Status[data["status"]], "artifacts": artifacts,
                      "files": tuple(data.get("files", ()))})

    @property
    def timeline(self) -> Path | None:
        path = self.artifacts / "timeline.json" if self.artifacts else None
        return path if path is not None and path.is_file() else None


class ReportDir:
    """Collects test runs and keeps the report files of ``path`` up to date.

    Every file is rewritten at each run: a few milliseconds per run even for a campaign of
    thousands (a run takes seconds), and whatever stops the campaign, the report is whole.
    The expensive parts are done once per run, when it joins: its plot, its file listing.
    """

    def __init__(self, path: Path, title: str) -> None:
        self.path, self.title = path, title
        self.runs: list[RunRecord] = []
        path.mkdir(parents=True, exist_ok=True)
        self.absolute = path.resolve()  # what links are relative to

    def add(self, run: RunRecord) -> None:
        if run.artifacts is not None:  # absolute, to be compared with the report dir's path
            run = dataclasses.replace(run, artifacts=run.artifacts.resolve())
        if run.artifacts is not None and run.reproduce:
            run.artifacts.mkdir(parents=True, exist_ok=True)
            script = run.artifacts / "reproduce.sh"
            script.write_text("#!/bin/sh\n# re-runs this test with the same seed, kernel and "
                              f"driver\nset -e\ncd {shlex.quote(os.getcwd())}\n"
                              f"exec {run.reproduce}\n")
            script.chmod(0o755)
        if run.artifacts is not None and not run.files:
            run = dataclasses.replace(run, files=tuple(
                str(p.relative_to(run.artifacts)) for p in sorted(run.artifacts.rglob("*"))
                if p.is_file()))
        plotted_passes = sum(bool(r.plot) for r in self.runs if r.status is Status.PASS)
        if not run.plot and (path := run.timeline) is not None and (
                run.status is not Status.PASS or plotted_passes < PLOTTED_PASSES):
            try:
                png = plot_timeline(json.loads(path.read_text()), run.name)
            except (OSError, ValueError, KeyError):
                pass  # a timeline cut short by a harness error: the table still has the run
            else:
                run = dataclasses.replace(run, plot=base64.b64encode(png).decode())
        self.runs.append(run)
        self.write()

    def write(self) -> None:
        write_junit(self.runs, self.path / "junit.xml", self.title, self.absolute)
        (self.path / "summary.json").write_text(
            json.dumps(kcidb_tests(self.runs, self.absolute), indent=1) + "\n")
        (self.path / "index.html").write_text(render_html(self.runs, self.title, self.absolute))
        (self.path / RUNS).write_text(json.dumps(
            {"title": self.title, "runs": [r.as_dict(self.absolute) for r in self.runs]}) + "\n")


def durations(sources: Sequence[Path]) -> dict[str, float]:
    """Seconds per pytest node ID in report dirs: pytest-split's ``.test_durations``, so that
    shards are balanced by what the tests really took on this kind of machine."""
    out: dict[str, float] = {}
    for src in sources:
        for run in _load(src)["runs"]:
            if "::" in run["name"]:  # a pytest test, not a repro iteration
                out[run["name"]] = round(run["duration_s"], 3)
    return dict(sorted(out.items()))


# The JSON types of a record's fields in runs.json (RunRecord.as_dict); without a default,
# the first four are required.
_NUMBER = (int, float)
_RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,), "status": (str,), "duration_s": _NUMBER, "artifacts": (str, type(None)),
    "properties": (dict,), "message": (str,), "detail": (str,),
    "recovery_ms_max": (*_NUMBER, type(None)), "reproduce": (str,), "started": _NUMBER,
    "plot": (str,), "files": (list,)}
_REQUIRED = ("name", "status", "duration_s", "artifacts")


def _load(src: Path) -> dict[str, Any]:
    """A report dir's runs.json, refused whole (BadInput naming it) unless every record in it
    is one the report can be written from."""
    path = src / RUNS
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{src} is not a report dir: cannot read {path}: {exc}") from None
    if not (isinstance(data, dict) and isinstance(data.get("title"), str)
            and isinstance(data.get("runs"), list)):
        raise BadInput(f"{path} is not a report's {RUNS}: expected "
                       '{"title": TEXT, "runs": [RECORD, ...]}')
    for i, run in enumerate(data["runs"], start=1):
        if problem := _record_problem(run):
            raise BadInput(f"{path}: run {i} {problem}")
    return data


def _record_problem(run: Any) -> str:
    """Why ``run`` is not a RunRecord.as_dict(), or ''."""
    if not isinstance(run, dict):
        return "is not an object"
    if missing := [key for key in _REQUIRED if key not in run]:
        return f"lacks {', '.join(missing)}"
    for key, value in run.items():
        if key not in _RUN_FIELDS:
            return f"has an unknown field {key!r}"
        if not isinstance(value, _RUN_FIELDS[key]):
            allowed = " or ".join(t.__name__ for t in _RUN_FIELDS[key])
            return f"has {key} of type {type(value).__name__}, not {allowed}"
    if run["status"] not in Status.__members__:
        return f"has status {run['status']!r}, not one of {', '.join(Status.__members__)}"
    if not all(isinstance(v, str) for v in run.get("properties", {}).values()):
        return "has properties whose values are not all strings"
    if not all(isinstance(f, str) for f in run.get("files", [])):
        return "has files that are not all strings"
    try:  # the KCIDB record gives its start time as a date
        datetime.datetime.fromtimestamp(run.get("started", 0), datetime.UTC)
    except (OverflowError, ValueError, OSError):
        return f"has started {run['started']!r}, not a Unix time"
    return ""


def merge(dest: Path, sources: Sequence[Path], title: str | None = None) -> ReportDir:
    """One report of several report dirs (the shards of a run): their tests in order.

    ``dest`` holds what it links to, as a shard does: a test's artifacts inside its shard dir
    are copied to ``dest/artifacts/<shard dir's name>/`` (unless they are inside ``dest``
    already: a shard dir in it); artifacts outside their shard stay where they are. Merging
    again copies over the same places."""
    loaded = [_load(src) for src in sources]
    into = dest.resolve()
    runs: list[RunRecord] = []
    copies: list[tuple[Path, Path]] = []
    for src, name, data in zip(sources, _shard_names(sources), loaded, strict=True):
        shard = src.resolve()
        for record in data["runs"]:
            run = RunRecord.from_dict(record, shard)
            if run.artifacts is not None and (
                    copy := _copy_target(run.artifacts, shard, into, into / ARTIFACTS / name)):
                if into.is_relative_to(run.artifacts):  # copytree would copy its own copy
                    raise BadInput(f"cannot merge into {dest}: it is inside {run.artifacts}, "
                                   f"the artifacts of {run.name} in {src}")
                copies.append((run.artifacts, copy))
                run = dataclasses.replace(run, artifacts=copy)
            runs.append(run)
    report = ReportDir(dest, title or " + ".join(dict.fromkeys(d["title"] for d in loaded)))
    for path, copy in copies:
        try:
            shutil.copytree(path, copy, dirs_exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"cannot copy {path} to {copy}: {exc.strerror or exc}") from None
    report.runs += runs
    report.write()
    return report


def _copy_target(artifacts: Path, shard: Path, into: Path, folder: Path) -> Path | None:
    """Where in ``folder`` a merge into ``into`` copies the ``artifacts`` of a run of the
    report dir ``shard``; None if they are not the shard's, are in ``into`` already, or are
    gone."""
    if (not artifacts.is_relative_to(shard) or artifacts.is_relative_to(into)
            or not artifacts.is_dir()):
        return None
    own = shard / ARTIFACTS  # its default place: copied without that extra level
    return folder / artifacts.relative_to(own if artifacts.is_relative_to(own) else shard)


def _shard_names(sources: Sequence[Path]) -> list[str]:
    """A folder name per report dir: its own, numbered where two share one."""
    names = [src.resolve().name or "shard" for src in sources]
    return [f"{name}-{i}" if names.count(name) > 1 else name
            for i, name in enumerate(names, start=1)]


def exit_status(statuses: Iterable[Status]) -> int:
    """1 if the driver failed anywhere in a way not recorded as a known bug, else 125 if
    anything could not be tested, else 0 (``repro`` is the command that exits 1 on a known
    bug, for bisecting it)."""
    seen = set(statuses)
    if Status.FAIL in seen:
        return 1
    return 125 if Status.ERROR in seen else 0


def write_junit(runs: Sequence[RunRecord], path: Path, title: str, base: Path) -> None:
    suite = ET.Element("testsuite", name=title, tests=str(len(runs)),
                       failures=str(sum(r.status in (Status.FAIL, Status.KNOWN) for r in runs)),
                       errors=str(sum(r.status is Status.ERROR for r in runs)),
                       skipped=str(sum(r.status is Status.SKIP for r in runs)),
                       time=f"{sum(r.duration_s for r in runs):.3f}")
    for run in runs:
        case = ET.SubElement(suite, "testcase", classname=title, name=run.name,
                             time=f"{run.duration_s:.3f}")
        props = ET.SubElement(case, "properties")
        for key, value in run.properties.items():
            ET.SubElement(props, "property", name=key, value=value)
        if run.artifacts is not None:
            ET.SubElement(props, "property", name="artifacts", value=link(run.artifacts, base))
        if run.reproduce:
            ET.SubElement(props, "property", name="reproduce", value=run.reproduce)
        if run.status in (Status.FAIL, Status.KNOWN):
            kind = "known kernel bug" if run.status is Status.KNOWN else "driver failure"
            ET.SubElement(case, "failure", message=run.message, type=kind).text = run.detail
        elif run.status is Status.ERROR:
            ET.SubElement(case, "error", message=run.message).text = run.detail
        elif run.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=run.message)
    ET.indent(suite)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


_KCIDB_STATUS = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.KNOWN: "FAIL",
                 Status.SKIP: "SKIP", Status.ERROR: "ERROR"}


def kcidb_tests(runs: Sequence[RunRecord], base: Path) -> dict[str, Any]:
    """The runs as KCIDB (v4) test records; ``misc`` keeps what KCIDB has no field for. An
    output file inside ``base`` has a URL relative to it (KCIDB's submitter would rewrite it
    to where the report was uploaded anyway)."""
    tests = []
    for i, run in enumerate(runs):
        record: dict[str, Any] = {
            "id": f"{ORIGIN}:{run.name}:{int(run.started)}:{i}",
            "origin": ORIGIN,
            "path": "nvme." + run.name.split("[", 1)[0].replace(" ", "_"),
            "status": _KCIDB_STATUS[run.status],
            "waived": run.status is Status.KNOWN,
            "duration": round(run.duration_s, 3),
            "environment": {"description": ", ".join(f"{k}={v}"
                                                      for k, v in run.properties.items())},
            "misc": {"name": run.name, "harness_status": run.status.name,
                     "message": run.message, "reproduce": run.reproduce,
                     "recovery_ms_max": run.recovery_ms_max, **run.properties},
        }
        if run.started:
            record["start_time"] = datetime.datetime.fromtimestamp(
                run.started, datetime.UTC).isoformat(timespec="seconds")
        if run.artifacts is not None:
            record["output_files"] = [{"name": f, "url": _url(run.artifacts / f, base)}
                                      for f in run.files]
        tests.append(record)
    return {"version": {"major": 4, "minor": 0}, "tests": tests}


# ----------------------------------------------------------------------------- plots

HISTOGRAM_FROM = 20  # recoveries from which a plot shows their distribution


MARKED_ONE_BY_ONE = 60  # faults drawn as lines; more, as a count per bin
FAULT_BINS = 100


def plot_timeline(timeline: dict[str, Any], title: str) -> bytes:
    """A PNG: above, each load's IOPS per second; below, its mean write latency per second
    (log scale: a reset turns milliseconds into seconds). Faults are red lines, recoveries
    green ones, the time from each fault to its recovery is shaded (a soak's faults: their
    count per time bin). With many recoveries (a soak's), a histogram of their times below.
    A PNG's size is its pixels': an hour's soak makes a page no bigger than an iteration's."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    latency = {k: v for k, v in timeline.get("latency_ms", {}).items() if v}
    recoveries = [1000 * s for s in timeline.get("recovery_s", [])]
    spread = len(recoveries) >= HISTOGRAM_FROM  # a soak's: their distribution, a panel of its own
    panels = 1 + bool(latency) + spread
    fig, axes = plt.subplots(panels, 1, squeeze=False, dpi=90,
                             figsize=(9, 3.2 + 1.8 * (panels - 1)),
                             gridspec_kw={"height_ratios": [3, 2, 2][:panels]})
    iops_ax = axes[0][0]
    timed = [row[0] for row in axes[:1 + bool(latency)]]  # the panels over time
    for ax in timed[1:]:
        ax.sharex(iops_ax)
    try:
        for name, points in timeline.get("iops", {}).items():
            if name in ("vm_cpu", "host_speed", "guest_busy") or not points:
                continue
            iops_ax.plot([p[0] for p in points], [p[1] for p in points],
                         label=f"{name} IOPS", linewidth=1.2)
        iops_ax.set_ylabel("IOPS")
        iops_ax.set_ylim(bottom=0)
        iops_ax.set_title(title, fontsize=10)
        if spread:
            hist_ax = axes[-1][0]
            hist_ax.hist(recoveries, bins=40, color="tab:green", alpha=0.8)
            p50, p99 = percentile(recoveries, 50), percentile(recoveries, 99)
            hist_ax.set_xlabel(f"ms from fault to recovery ({len(recoveries)}: p50 {p50:.0f}, "
                               f"p99 {p99:.0f}, max {max(recoveries):.0f})")
            hist_ax.set_ylabel("recoveries")
        if latency:
            lat_ax = axes[1][0]
            for name, points in latency.items():
                lat_ax.plot([p[0] for p in points], [p[1] for p in points], marker=".",
                            markersize=3, linewidth=1, label=f"{name} write latency")
            lat_ax.set_yscale("log")
            lat_ax.set_ylabel("ms (mean)")
        for ax in timed:
            _mark_faults(ax, timeline.get("events", []))
        for ax in (row[0] for row in axes):
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="upper right", fontsize=8)
        timed[-1].set_xlabel("seconds (guest clock)")
        out = io.BytesIO()
        fig.tight_layout()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)


def _mark_faults(ax: Any, events: list[dict[str, Any]]) -> None:
    """Each fault a red line, each recovery a green one, the time between shaded; more faults
    than MARKED_ONE_BY_ONE (a soak's) as their count per time bin, on an axis of their own:
    thousands of lines are one red band, and slow to draw."""
    faults = [ev["t"] for ev in events if ev["kind"] == "fault"]
    if len(faults) > MARKED_ONE_BY_ONE:
        span = max(faults) - min(faults)
        width = max(span / FAULT_BINS, 1.0)
        rate = ax.twinx()
        counts, _, _ = rate.hist(faults, bins=max(1, round(span / width)), histtype="step",
                                 color="tab:red", linewidth=0.8, alpha=0.7)
        rate.set_ylim(0, 3 * max(counts))  # the lower third: the loads' lines stay readable
        rate.set_ylabel(f"faults per {width:.0f} s", color="tab:red")
        return
    fault_at: float | None = None
    for ev in events:
        if ev["kind"] == "fault":
            ax.axvline(ev["t"], color="tab:red", linewidth=0.8, alpha=0.7)
            fault_at = ev["t"] if fault_at is None else fault_at
        elif ev["kind"] == "recovered":
            ax.axvline(ev["t"], color="tab:green", linewidth=0.8, alpha=0.7)
            if fault_at is not None:
                ax.axvspan(fault_at, ev["t"], color="tab:orange", alpha=0.25, linewidth=0)
                fault_at = None


# ----------------------------------------------------------------------------- HTML

_CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.pass{background:#dfd}.FAIL{background:#fbb}.ERROR{background:#fd9}.known{background:#eef}
.skip{background:#eee}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:85%}
code{font-size:90%}"""


def render_html(runs: Sequence[RunRecord], title: str, base: Path) -> str:
    counts = {s: sum(r.status is s for r in runs) for s in Status}
    summary = ", ".join(f"{n} {s.name}" for s, n in counts.items() if n)
    rows = []
    for i, r in enumerate(runs):
        rec = f"{r.recovery_ms_max:.0f} ms" if r.recovery_ms_max is not None else "-"
        rows.append(f'<tr class="{r.status.value}"><td><a href="#t{i}">{html.escape(r.name)}'
                    f'</a></td><td>{html.escape(r.properties.get("kernel_release", "?"))}</td>'
                    f"<td>{r.status.name}</td><td>{rec}</td><td>{r.duration_s:.1f} s</td></tr>")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{len(runs)} test(s): {summary or 'none yet'}. Only FAIL means the kernel's "
             "driver misbehaved; ERROR means the harness could not test; KNOWN is a recorded "
             "kernel bug.</p>",
             "<table id='summary'><tr><th>test</th><th>kernel</th><th>status</th>"
             "<th>slowest recovery</th><th>duration</th></tr>", *rows, "</table>"]
    for i, r in enumerate(runs):
        parts.append(f"<h2 id='t{i}'>{html.escape(r.name)}: {r.status.name}</h2>")
        if r.message:
            parts.append(f"<p>{html.escape(r.message)}</p>")
        props = ", ".join(f"{k}={v}" for k, v in r.properties.items())
        parts.append(f"<p><small>{html.escape(props)}</small></p>")
        if r.reproduce:
            parts.append(f"<p>reproduce: <code>{html.escape(r.reproduce)}</code></p>")
        if r.artifacts is not None:
            parts.append(f"<p>artifacts: <a href='{html.escape(_url(r.artifacts, base))}/'>"
                         f"{html.escape(link(r.artifacts, base))}</a></p>")
        if r.plot:
            parts.append(f"<img class='plot' alt='IOPS and latency of {html.escape(r.name)}' "
                         f"src='data:image/png;base64,{r.plot}'>")
        if r.detail:
            parts.append(f"<pre>{html.escape(r.detail[-6000:])}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
