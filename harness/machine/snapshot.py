"""Snapshot start: boot a guest once, save the whole VM, start later VMs from that state.

QEMU 7.2's NVMe controller cannot be migrated, so the saved VM has the PCIe root ports but no
controllers; a restored VM gets its controllers hot-added before the guest runs on, and the
driver probes them as hot-plugged devices. One snapshot therefore serves every topology with
the same CPUs, memory, kernel arguments and number of controllers (one namespace each: QEMU
cannot hot-add ``nvme-ns`` devices, so several namespaces per controller mean a cold boot).

A snapshot is keyed by everything it is made of: the guest image (kernel, modules, initramfs
with the guest scripts, root filesystem), QEMU's binary and version, the accelerator, and the
VM's shape. A changed input means another key, so a snapshot is never reused across inputs.
This module is the store (keys, places, pruning); the lab makes them (``lab.snapshot_for``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness.build.images import GuestImage
from harness.machine.accel import Accel
from harness.machine.keys import KeyPair
from harness.machine.qemu import hotpluggable
from harness.machine.topology import Controller, Topology
from harness.util import digest

# Snapshots kept in the cache: the most recently used ones (each is about 100 MB; a matrix
# over three kernels and a handful of shapes uses about 20). Older ones go once idle this long.
KEEP = 24
IDLE_BEFORE_PRUNE_S = 3600.0

# Bumped when what a snapshot holds or how it is made changes (2: Ed25519 keys; 3: the SSH
# session waiting on the relay port, and its greeting).
SNAPSHOT_VERSION = "snapshot-5"


@dataclass(frozen=True)
class Snapshot:
    key: str
    path: Path

    @property
    def state(self) -> Path:
        return self.path / "state"

    @property
    def client_key(self) -> KeyPair:
        return KeyPair.load(self.path / "client_key")

    @property
    def host_key(self) -> KeyPair:
        return KeyPair.load(self.path / "host_key")

    @property
    def relay_greeting(self) -> bytes | None:
        """What the SSH server sent on the relay port before the save, read then (None: the
        guest had no relay port, a restored VM logs in over TCP)."""
        path = self.path / "relay_greeting"
        return path.read_bytes() if path.exists() else None


def unsupported_reason(topology: Topology) -> str | None:
    """Why this topology must boot cold, or None when it can start from a snapshot."""
    if topology.subsystem:
        return "an NVM subsystem's namespaces are nvme-ns devices (QEMU cannot hot-add them)"
    if not hotpluggable(topology):
        return "a controller has several namespaces (QEMU cannot hot-add nvme-ns)"
    return None


def base_topology(topology: Topology) -> Topology:
    """What a snapshot depends on: the controllers are added after the restore."""
    return Topology(tuple(Controller() for _ in topology.controllers), topology.cpus,
                    topology.memory, topology.kernel_args, ssh_relay=topology.ssh_relay,
                    link_speed=topology.link_speed)


@cache
def qemu_identity(qemu: str) -> str:
    path = shutil.which(qemu) or qemu
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
        stamp = os.stat(path).st_mtime_ns
    except (OSError, subprocess.TimeoutExpired):
        return path
    return f"{path} {stamp} {version}"


def snapshot_key(image: GuestImage, topology: Topology, accel: Accel, qemu: str) -> str:
    return digest(SNAPSHOT_VERSION.encode(), image.key.encode(), qemu_identity(qemu).encode(),
                  accel.name.encode(), str(base_topology(topology)).encode())


def prune(root: Path, keep: int = KEEP, idle: float = IDLE_BEFORE_PRUNE_S) -> list[Path]:
    """Remove the snapshots beyond the ``keep`` most recently used that nobody used for
    ``idle`` seconds, and half-made ones as old (a crashed run's); return what went.

    Snapshots are only ever made, each change of an input makes another: without this the
    cache grows by one at every change of the guest image, QEMU or a shape.
    """
    now = time.time()

    def last_use(path: Path) -> float:
        for stamp in ("used", "done"):
            with contextlib.suppress(OSError):
                return (path / stamp).stat().st_mtime
        return path.stat().st_mtime

    made = sorted((p for p in root.iterdir() if p.is_dir() and (p / "done").exists()),
                  key=last_use, reverse=True)
    old = [p for p in made[keep:] if now - last_use(p) > idle]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
        path.with_suffix(".lock").unlink(missing_ok=True)
    # A half-made one's lock may be held again by a run making it anew: left alone.
    crashed = [p for p in root.iterdir() if p.is_dir() and not (p / "done").exists()
               and now - last_use(p) > idle]
    for path in crashed:
        shutil.rmtree(path, ignore_errors=True)
    return old + crashed


def discard(snap: Snapshot) -> None:
    shutil.rmtree(snap.path, ignore_errors=True)
