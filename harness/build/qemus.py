"""QEMU from a Debian suite, fetched into a private root: ``--qemu debian:trixie``.

Users run newer QEMUs than the host's. The suite's ``qemu-system-x86`` and everything it
depends on are unpacked (no maintainer scripts) under the cache; a small launcher runs the
binary through that root's own dynamic loader and libraries, and points QEMU at that root's
firmware (SeaBIOS, option ROMs) first. Nothing is installed on the host: a bookworm host runs
trixie's QEMU 10.0.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path

from harness import paths
from harness.build import apt
from harness.errors import BadInput
from harness.progress import Progress
from harness.util import run_tool

PREFIX = "debian:"
PACKAGE = "qemu-system-x86"
SUITES = ("bookworm", "trixie")
ROOT_VERSION = "qemu-root-1"  # bump when the unpacking or the launcher changes
# Where the root's firmware lies: searched before the binary's built-in (absolute, host) paths
FIRMWARE_DIRS = ("usr/share/qemu", "usr/share/seabios", "usr/lib/ipxe/qemu")


def is_debian(spec: str) -> bool:
    return spec.startswith(PREFIX)


def validate(spec: str) -> None:
    """Refuse a ``debian:SUITE`` this module cannot fetch, before anything else runs."""
    if is_debian(spec) and spec.removeprefix(PREFIX) not in SUITES:
        raise BadInput(f"unknown QEMU {spec!r}: choose one of "
                       f"{', '.join(PREFIX + s for s in SUITES)}, or give a binary")


def binary(spec: str, progress: Progress) -> str:
    """The QEMU binary ``spec`` stands for: a ``debian:SUITE`` is fetched once (its launcher
    is returned), anything else is a binary name or path, returned as it is."""
    if not is_debian(spec):
        return spec
    validate(spec)
    suite = apt.Suite(spec.removeprefix(PREFIX))
    version = suite.field(PACKAGE, "Version")
    dest = paths.cache_dir() / "qemu" / f"{suite.name}_{_safe(version)}-{ROOT_VERSION}"
    launcher = dest / "qemu-system-x86_64"
    if not launcher.exists():
        with paths.locked(dest.with_suffix(".lock")):
            if not launcher.exists():
                progress.step(f"fetching QEMU {version} from Debian {suite.name}")
                _unpack(suite, version, dest)
    return str(launcher)


def _safe(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "_", version)


def _unpack(suite: apt.Suite, version: str, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)  # what an interrupted fetch left
    dest.parent.mkdir(parents=True, exist_ok=True)
    root = dest / "root"
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        debs = suite.download_closure([f"{PACKAGE}={version}"], Path(tmp) / "debs")
        unpacked = Path(tmp) / "root"
        unpacked.mkdir()
        for deb in debs:
            run_tool(["dpkg-deb", "-x", str(deb), str(unpacked)], f"unpacking {deb.name}")
        dest.mkdir()
        unpacked.rename(root)
    loader = root / "usr/lib64/ld-linux-x86-64.so.2"
    libs = root / "usr/lib/x86_64-linux-gnu"
    firmware = [a for d in FIRMWARE_DIRS if (root / d).is_dir() for a in ("-L", str(root / d))]
    tmp_launcher = dest / "qemu-system-x86_64.tmp"
    # exec: the QEMU process is the launcher's own, so its pid is the one the harness holds
    tmp_launcher.write_text(
        "#!/bin/sh\n# QEMU of Debian " + suite.name + " " + version + ", run from its own root\n"
        f"QEMU_MODULE_DIR={shlex.quote(str(libs / 'qemu'))} exec {shlex.quote(str(loader))} "
        f"--library-path {shlex.quote(str(libs))} "
        f"{shlex.quote(str(root / 'usr/bin/qemu-system-x86_64'))} "
        f"{shlex.join(firmware)} \"$@\"\n")
    tmp_launcher.chmod(0o755)
    os.replace(tmp_launcher, dest / "qemu-system-x86_64")
