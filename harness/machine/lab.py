"""Getting a VM into the state a caller needs: images built, QEMU up, guest on SSH.

The CLI and the pytest plugin both come through here; neither holds logic of its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.build import images, qemus
from harness.build.images import GuestImage
from harness.machine import accel as accel_mod
from harness.machine import snapshot
from harness.machine.accel import Accel
from harness.machine.doctor import qemu_version
from harness.machine.topology import Topology
from harness.machine.vm import VM, BaseVM, RestoredVM, require_qemu
from harness.progress import Progress
from harness.util import find_tool

# paramiko logs every refused connection attempt (expected while a guest boots) as a traceback.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class LabConfig:
    """What every VM of a run shares: kernel, QEMU binary, accelerator."""

    kernel: str = images.DEFAULT_KERNEL
    qemu: str = "qemu-system-x86_64"
    accel: str | None = None  # None: choose automatically
    boot_timeout: float = 180.0
    snapshots: bool = True  # start VMs from a saved snapshot where the topology allows
    nvme_src: Path | None = None  # NVMe host driver sources to build and load instead of stock


class Lab:
    """Builds the guest image once per run and boots VMs from it."""

    def __init__(self, config: LabConfig, progress: Progress | None = None) -> None:
        self.config = config
        self.progress = progress or Progress()
        self.accel: Accel = accel_mod.choose(config.accel)
        # the binary: a debian:SUITE is fetched now, before any image or snapshot work
        self.qemu = qemus.binary(config.qemu, self.progress)
        require_qemu(self.qemu)
        self._image: GuestImage | None = None
        self._properties: dict[str, str] | None = None
        paths.sweep_stale_scratch()

    @property
    def image(self) -> GuestImage:
        if self._image is None:
            self._image = images.prepare(self.config.kernel, self.progress,
                                          self.config.nvme_src)
        return self._image

    def prepare(self) -> None:
        """Build what the VMs need now: its errors are not an iteration's."""
        self.image  # noqa: B018

    def properties(self) -> dict[str, str]:
        """What a report records of this lab with each test: kernel, QEMU, accelerator,
        driver. The image is built if it was not (its failure is the caller's to report).
        Worked out once: the pytest plugin asks for every test."""
        if self._properties is None:
            version = qemu_version(find_tool(self.qemu) or self.qemu)
            image = self.image
            self._properties = {
                "kernel": self.config.kernel, "kernel_release": image.kernel.release,
                "qemu": self.config.qemu,
                "qemu_version": ".".join(map(str, version)) if version else "unknown",
                "accel": str(self.accel),
                "nvme_driver": (f"{image.driver.source} ({image.driver.hash})"
                                if image.driver else "stock")}
        return dict(self._properties)

    def vm(self, topology: Topology, artifacts: Path | None = None, name: str = "vm",
           snapshots: bool | None = None) -> VM:
        """A VM not yet started: use it as a context manager.

        It starts from a snapshot (made on first use) unless snapshots are off or the
        topology needs a cold boot.
        """
        snap = None
        if (self.config.snapshots if snapshots is None else snapshots) and \
                snapshot.unsupported_reason(topology) is None:
            snap = snapshot_for(self.image, topology, self.accel, self.qemu,
                                self.progress, self.config.boot_timeout)
        if snap is not None:
            return RestoredVM(self.image, topology, self.accel, snap, qemu=self.qemu,
                              artifacts=artifacts, name=name,
                              boot_timeout=self.config.boot_timeout)
        return VM(self.image, topology, self.accel, qemu=self.qemu, artifacts=artifacts,
                  name=name, boot_timeout=self.config.boot_timeout)

    @contextlib.contextmanager
    def running(self, topology: Topology, artifacts: Path | None = None) -> Iterator[VM]:
        with self.vm(topology, artifacts) as vm:
            yield vm


class VMPool:
    """Reuses a running VM for tests with the same topology, while it is healthy.

    A VM is retired (stopped) rather than reused when a test tainted it, when the guest
    printed an oops, or when QEMU or SSH is gone. Only one VM runs at a time per pool: a test
    asking for another topology retires the previous VM first, which keeps memory bounded.
    """

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._vm: VM | None = None
        self._started = 0

    def acquire(self, topology: Topology, artifacts: Path) -> VM:
        """A running VM with ``topology``; a new one keeps its logs in ``artifacts/vmN``."""
        vm = self._vm
        if vm is not None and (vm.topology != topology or not self.healthy(vm)):
            self.retire()
            vm = None
        if vm is None:
            self._started += 1
            vm = self.lab.vm(topology, artifacts / f"vm{self._started}", name=f"vm{self._started}")
            try:
                vm.start()
            except BaseException:
                vm.stop()
                raise
            self._vm = vm
        return vm

    @staticmethod
    def healthy(vm: VM) -> bool:
        return (not vm.tainted and not vm.oopses and vm.connected)

    def retire(self) -> None:
        if self._vm is not None:
            self._vm.stop()
            self._vm = None

    close = retire


def snapshot_for(image: GuestImage, topology: Topology, accel: Accel, qemu: str,
                 progress: Progress, boot_timeout: float = 120.0) -> snapshot.Snapshot:
    """The snapshot for this VM shape, made now if it does not exist yet."""
    key = snapshot.snapshot_key(image, topology, accel, qemu)
    snap = snapshot.Snapshot(key, paths.cache_dir() / "snapshots" / key)
    if not (snap.path / "done").exists():
        with paths.locked(snap.path.with_suffix(".lock")):
            if not (snap.path / "done").exists():
                progress.step(f"making a snapshot for {snapshot.base_topology(topology)}")
                _make_snapshot(snap, image, snapshot.base_topology(topology), accel, qemu,
                               boot_timeout)
                progress.done()
                snapshot.prune(snap.path.parent)
    (snap.path / "used").touch()
    return snap


def _make_snapshot(snap: snapshot.Snapshot, image: GuestImage, topology: Topology, accel: Accel,
                   qemu: str, boot_timeout: float) -> None:
    work = snap.path.with_name(snap.path.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.chmod(work, 0o700)
    try:
        _save_snapshot(work, image, topology, accel, qemu, boot_timeout)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    (work / "meta.json").write_text(json.dumps({
        "key": snap.key, "image": image.key, "qemu": snapshot.qemu_identity(qemu),
        "accel": accel.name, "topology": str(topology), "created": time.time()}, indent=2) + "\n")
    (work / "done").write_text("")
    shutil.rmtree(snap.path, ignore_errors=True)
    os.rename(work, snap.path)


def _save_snapshot(work: Path, image: GuestImage, topology: Topology, accel: Accel,
                   qemu: str, boot_timeout: float) -> None:
    with BaseVM(image, topology, accel, qemu=qemu, artifacts=work / "base-vm",
                name="snapshot", boot_timeout=boot_timeout) as vm:
        vm.client_key.save(work / "client_key")
        vm.host_key.save(work / "host_key")
        if vm.relay_greeting is not None:
            (work / "relay_greeting").write_bytes(vm.relay_greeting)
        vm.save(work / "state")
