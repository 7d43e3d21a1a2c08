"""The pytest plugin: fixtures ``lab``, ``vm``, ``guest``, ``qmp`` and the ``nvme`` marker.

A thin layer: VM lifecycle, reuse and log capture live in :mod:`harness.lab` and
:mod:`harness.vm`. What this adds is pytest's view: one artifacts directory per test, a test
whose guest printed a kernel oops fails with the oops's title, and the artifacts path is
printed when a test fails.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from harness import images
from harness.errors import GuestUnreachable, HarnessError
from harness.lab import Lab, LabConfig, VMPool
from harness.qmp import Qmp
from harness.ssh import Guest
from harness.topology import Topology
from harness.vm import VM

_ARTIFACTS = pytest.StashKey[Path]()
_VM = pytest.StashKey[VM]()
_MARKS = pytest.StashKey[dict[str, int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nvme-harness")
    group.addoption("--kernel", default=images.DEFAULT_KERNEL,
                    help="guest kernel: debian:VERSION, a kernel build tree, an install "
                    "directory or BZIMAGE[,MODULES_DIR]")
    group.addoption("--nvme-src", default=None, type=Path, metavar="DIR",
                    help="build the NVMe host driver from DIR (drivers/nvme/host) and test it")
    group.addoption("--qemu", default="qemu-system-x86_64", help="QEMU binary")
    group.addoption("--accel", choices=("kvm", "tcg"), default=None,
                    help="accelerator (default: KVM when really usable, else TCG)")
    group.addoption("--artifacts-dir", default="artifacts", type=Path,
                    help="one directory per test with console, dmesg, QMP and command logs")
    group.addoption("--boot-timeout", type=float, default=180.0)
    group.addoption("--seed", type=int, default=20261121,
                    help="seed of the recovery scenarios (repro uses the same procedures)")
    group.addoption("--no-snapshot", action="store_true",
                    help="boot every VM cold instead of starting from a saved snapshot")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "nvme(**topology): the NVMe topology the test's VM needs")


def pytest_report_header(config: pytest.Config) -> list[str]:
    from harness import accel

    try:
        chosen = accel.choose(config.getoption("accel"))
    except HarnessError as exc:
        return [f"nvmeh: {exc}"]
    src = config.getoption("nvme_src")
    driver = f", NVMe driver from {src}" if src else ""
    return [f"nvmeh: kernel {config.getoption('kernel')}{driver}, accelerator {chosen}"]


@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config) -> Lab:
    """Images are built once per session, on first use."""
    try:
        return Lab(LabConfig(kernel=pytestconfig.getoption("kernel"),
                             qemu=pytestconfig.getoption("qemu"),
                             accel=pytestconfig.getoption("accel"),
                             boot_timeout=pytestconfig.getoption("boot_timeout"),
                             snapshots=not pytestconfig.getoption("no_snapshot"),
                             nvme_src=pytestconfig.getoption("nvme_src")))
    except HarnessError as exc:
        pytest.exit(f"nvmeh: {exc}", returncode=2)


@pytest.fixture(scope="session")
def vm_pool(lab: Lab) -> Iterator[VMPool]:
    pool = VMPool(lab)
    yield pool
    pool.close()


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's artifacts directory (emptied first)."""
    root = Path(request.config.getoption("artifacts_dir")).resolve()
    path = root / _safe_name(request.node.nodeid)
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
    vms_dir = Path(request.config.getoption("artifacts_dir")).resolve() / "vms"
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
    if path is not None and failed:
        machine = item.stash.get(_VM, None)
        if machine is not None:
            machine.tainted = True
        sections = getattr(report, "sections", None)
        if isinstance(sections, list):
            sections.append(("nvmeh artifacts", str(path)))
    return report
