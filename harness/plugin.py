"""The pytest plugin: fixtures ``lab``, ``vm``, ``guest``, ``qmp`` and the ``nvme`` marker.

A thin layer: VM lifecycle, reuse and log capture live in :mod:`harness.machine.lab` and
:mod:`harness.machine.vm`. What this adds is pytest's view: one artifacts directory per test, a test
whose guest printed a kernel oops fails with the oops's title, and the artifacts path is
printed when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.campaigns import options as opt
from harness.errors import GuestUnreachable, HarnessError
from harness.guest.ssh import Guest
from harness.machine.lab import Lab, VMPool
from harness.machine.qmp import Qmp
from harness.machine.topology import Topology
from harness.machine.vm import VM
from harness.report import ReportDir, RunRecord, Status, artifacts_root
from harness.target.machine import TargetConfig, TargetLab

_ARTIFACTS = pytest.StashKey[Path]()
_VM = pytest.StashKey[VM]()
_MARKS = pytest.StashKey[dict[str, int]]()
_RECORD = "nvmeh_record"  # a test's RunRecord as JSON, in its report's user_properties
VM_FOOTPRINT = 2 << 30  # bytes a worker's VM needs: 1 GiB guest RAM, QEMU, images' cache


class ReportWriter:
    """Adds each test's record (made where it ran, see :func:`_record`) to --report-dir.

    A plugin of its own, registered by the pytest process that writes the report: without
    xdist the only one, with it the controller, to which the workers send their records."""

    def __init__(self, report_dir: ReportDir) -> None:
        self.report_dir = report_dir

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == _RECORD and isinstance(value, str):
                self.report_dir.add(RunRecord.from_dict(json.loads(value)))


_REPORT_WRITER = pytest.StashKey[ReportWriter]()


def pytest_addoption(parser: pytest.Parser) -> None:
    opt.add_to_pytest(parser, *opt.SHARED)
    parser.getgroup(opt.PYTEST_GROUP).addoption(
        "--artifacts-dir", default=None, type=Path, metavar="DIR",
        help="one directory per test with console, dmesg, QMP and command logs (default: "
        "the --report-dir's artifacts/, else artifacts)")


def pytest_configure(config: pytest.Config) -> None:
    # here rather than in the project's pytest ini: a project using the plugin gets it too
    config.addinivalue_line("markers", "nvme(**topology): the NVMe topology the test's VM "
                            "needs (see harness.machine.topology.Topology.build)")
    path = config.getoption("report_dir", None)
    if path is not None and not hasattr(config, "workerinput"):
        writer = ReportWriter(ReportDir(Path(path).resolve(), "pytest " + " ".join(
            str(a) for a in config.invocation_params.args)))
        config.stash[_REPORT_WRITER] = writer
        config.pluginmanager.register(writer, "nvme-harness-report")


@pytest.hookimpl(optionalhook=True)  # only called with pytest-xdist
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one VM per worker, as many as the host's cores and memory carry."""
    return auto_workers(os.cpu_count() or 1, available_memory())


def auto_workers(cpus: int, memory: int, per_vm: int = VM_FOOTPRINT) -> int:
    """Workers for ``cpus`` cores and ``memory`` bytes free: a VM (QEMU's RSS plus the
    page cache its images need) per worker, one core each."""
    return max(1, min(cpus, memory // per_vm))


def available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def pytest_unconfigure(config: pytest.Config) -> None:
    writer = config.stash.get(_REPORT_WRITER, None)
    if writer is not None:
        config.pluginmanager.unregister(writer)
        del config.stash[_REPORT_WRITER]


def option_values(config: pytest.Config) -> dict[str, Any]:
    """The shared options' values by dest, as the CLI's argparse namespace holds them."""
    return {option.dest: config.getoption(option.dest) for option in opt.SHARED}


def reproduce_command(nodeid: str, values: Mapping[str, Any]) -> str:
    """The pytest command line that re-runs test ``nodeid`` with the same kernel, seeds and
    driver (``values``: :func:`option_values`)."""
    # fewer than one iteration runs each test once, as one does: nothing to name
    values = {**values, "iterations": max(1, values["iterations"])}
    return opt.reproduce_command([sys.executable, "-m", "pytest", nodeid], values,
                                 (opt.KERNEL, opt.SEED, opt.ITERATIONS, opt.SOAK,
                                  opt.NVME_SRC, *opt.TARGET_OPTIONS),
                                 always=(opt.KERNEL, opt.SEED), joined=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    from harness.machine import accel

    try:
        chosen = accel.choose(config.getoption("accel"))
    except HarnessError as exc:
        return [f"nvmeh: {exc}"]
    if (target := config.getoption("target")) is not None:
        device = config.getoption("device")
        return [f"nvmeh: target {target}" + (f", device {device}" if device else "")]
    src = config.getoption("nvme_src")
    driver = f", NVMe driver from {src}" if src else ""
    return [f"nvmeh: kernel {config.getoption('kernel')}{driver}, accelerator {chosen}"]


@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config) -> Lab | TargetLab:
    """Images are built once per session, on first use; a --target is reached and checked
    once, on first use."""
    values = option_values(pytestconfig)
    try:
        if values["target"] is not None:
            return TargetLab(TargetConfig.parse(values["target"], values["device"],
                                                values["destroy_data_on"], values["power_cmd"],
                                                values["boot_timeout"], values["nvme_src"]))
        return Lab(opt.lab_config(values))
    except HarnessError as exc:
        pytest.exit(f"nvmeh: {exc}", returncode=2)


@pytest.fixture(scope="session")
def vm_pool(lab: Lab | TargetLab) -> Iterator[VMPool]:
    if isinstance(lab, TargetLab):
        pytest.skip("needs a VM of its own; --target gives a real machine")
    pool = VMPool(lab)
    yield pool
    pool.close()


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]


def _artifacts_root(config: pytest.Config) -> Path:
    given = artifacts_root(config.getoption("artifacts_dir"), config.getoption("report_dir"))
    return (given or Path("artifacts")).resolve()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's artifacts directory (emptied first)."""
    path = _artifacts_root(request.config) / _safe_name(request.node.nodeid)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    request.node.stash[_ARTIFACTS] = path
    return path


def topology_of(node: pytest.Item) -> Topology:
    marker = node.get_closest_marker("nvme")
    if marker is None:
        return Topology()
    if marker.args:
        raise HarnessError(f"@pytest.mark.nvme takes keywords only, got {marker.args!r}")
    return Topology.build(**marker.kwargs)


@pytest.fixture
def vm(request: pytest.FixtureRequest, vm_pool: VMPool, artifacts: Path) -> Iterator[VM]:
    """A running VM with the marker's topology; reused across tests while it stays healthy."""
    failure: str | None = None
    try:
        topology = topology_of(request.node)
    except (HarnessError, TypeError) as exc:
        failure = f"bad nvme marker on {request.node.nodeid}: {exc}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    # one directory per xdist worker: each worker's pool numbers its VMs from 1
    vms_dir = (_artifacts_root(request.config) / "vms"
               / os.environ.get("PYTEST_XDIST_WORKER", "main"))
    vms_dir.mkdir(parents=True, exist_ok=True)
    try:
        machine = vm_pool.acquire(topology, vms_dir)
    except HarnessError as exc:
        failure = f"nvmeh: {exc}\n{exc.detail}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    marks = machine.log_marks()
    request.node.stash[_VM] = machine
    request.node.stash[_MARKS] = marks
    tag = f"nvmeh: test {request.node.nodeid} begins"
    machine.guest.run(f"echo {tag!r} > /dev/kmsg", timeout=30)
    yield machine
    _collect(machine, artifacts, marks, tag)


def _collect(machine: VM, dest: Path, marks: dict[str, int], tag: str) -> None:
    machine.export_logs(marks, dest)
    if machine.connected:
        try:
            dmesg = machine.guest.run("dmesg", timeout=30).stdout
            begin = dmesg.rfind(tag)
            (dest / "dmesg.txt").write_text(dmesg[dmesg.rfind("\n", 0, begin) + 1:]
                                            if begin >= 0 else dmesg)
        except HarnessError:
            pass


@pytest.fixture
def guest(vm: VM) -> Guest:
    return vm.guest


@pytest.fixture
def qmp(vm: VM) -> Qmp:
    return vm.qmp


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a test whose guest printed a kernel oops or died, naming what happened."""
    machine = item.stash.get(_VM, None)
    seen = len(machine.oopses) if machine else 0
    try:
        yield
    except HarnessError as exc:
        if machine is not None and isinstance(exc, GuestUnreachable):
            machine.explain_lost_connection()  # a panic or dead QEMU explains it best
        raise exc
    if machine is not None:
        new = machine.untaken_oopses(since=seen)
        if machine.oopses[seen:]:
            machine.tainted = True
        if new:
            machine.tainted = True
            titles = "; ".join(o.title for o in new)
            body = "\n".join(new[0].lines[:40])
            pytest.fail(f"guest kernel reported: {titles}\n{body}", pytrace=False)
        machine.check_alive()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    report = yield
    path = item.stash.get(_ARTIFACTS, None)
    failed = getattr(report, "failed", False)
    if isinstance(report, pytest.TestReport) and item.config.getoption("report_dir", None):
        record = _record(item, report, path, call)
        if record is not None:
            report.user_properties.append((_RECORD, json.dumps(record.as_dict())))
    if path is not None and failed:
        machine = item.stash.get(_VM, None)
        if machine is not None:
            machine.tainted = True
        sections = getattr(report, "sections", None)
        if isinstance(sections, list):
            sections.append(("nvmeh artifacts", str(path)))
    return report


def _record(item: pytest.Item, report: pytest.TestReport, artifacts: Path | None,
            call: pytest.CallInfo[None]) -> RunRecord | None:
    """The test's record, once: at its call, or at a setup that failed or skipped it. A
    test that failed on a HarnessError (QEMU died, the guest was unreachable, a figure
    could not be judged) is an ERROR: the harness could not test, the driver is not at
    fault."""
    if report.when == "call":
        harness_broke = call.excinfo is not None and call.excinfo.errisinstance(HarnessError)
        status = (Status.PASS if report.passed else
                  Status.KNOWN if hasattr(report, "wasxfail") else
                  Status.SKIP if report.skipped else
                  Status.ERROR if harness_broke else Status.FAIL)
    elif report.when == "setup" and not report.passed:
        status = Status.SKIP if report.skipped else Status.ERROR
    else:
        return None
    if hasattr(report, "wasxfail"):
        message = str(report.wasxfail)
    elif report.skipped and isinstance(report.longrepr, tuple):
        message = str(report.longrepr[2])
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)  # the exception, not the traceback
        text = str(crash.message) if crash is not None else report.longreprtext.strip()
        message = text.splitlines()[0] if text else ""
    else:
        message = ""
    config = item.config
    callspec = getattr(item, "callspec", None)
    seed = callspec.params.get("seed") if callspec is not None else None
    props: dict[str, str] = {"kernel": str(config.getoption("kernel")),
                             "seed": str(seed if seed is not None else config.getoption("seed"))}
    lab_ = getattr(item, "funcargs", {}).get("lab")
    if isinstance(lab_, (Lab, TargetLab)):
        with contextlib.suppress(HarnessError):  # the test failed on it already
            props.update(lab_.properties())
    if item.get_closest_marker("nvme") is not None:
        with contextlib.suppress(HarnessError, TypeError):  # the vm fixture failed on it
            props["topology"] = str(topology_of(item))
    reproduce = reproduce_command(item.nodeid, option_values(config))
    recovery_ms = None
    if artifacts is not None and (timeline := artifacts / "timeline.json").is_file():
        with contextlib.suppress(OSError, ValueError):
            recoveries = json.loads(timeline.read_text()).get("recovery_s") or []
            recovery_ms = max(recoveries) * 1000 if recoveries else None
    return RunRecord(item.nodeid, status, report.duration, props, message,
                     report.longreprtext[-6000:] if report.failed else "",
                     recovery_ms, artifacts, reproduce, time.time() - report.duration)
