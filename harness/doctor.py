"""Is this host ready to run VMs? Each check says what is missing and the command that fixes it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import accel, paths

MIN_QEMU = (7, 2)
MIN_FREE_GB = 4
# Debian packages providing what the harness runs on the host.
PACKAGES = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "busybox": "busybox-static",
    "depmod": "kmod",
    "mkfs.ext4": "e2fsprogs",
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
    "ssh": "openssh-client",  # for `python -m harness shell`
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # a shell command that fixes it, when there is one


def _sudo() -> str:
    return "" if os.geteuid() == 0 else "sudo "


def apt_install_command(packages: list[str]) -> str:
    return (f"{_sudo()}apt-get update && {_sudo()}env DEBIAN_FRONTEND=noninteractive "
            f"apt-get install -y --no-install-recommends {' '.join(sorted(set(packages)))}")


def qemu_version(binary: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.access(p, os.X_OK)), None)


def checks(qemu: str = "qemu-system-x86_64") -> list[Check]:
    result: list[Check] = []
    missing = [tool for tool in PACKAGES if tool != qemu and not _which(tool)]
    busybox = Path("/bin/busybox")
    if "busybox" not in missing and not (busybox.exists() and _static(busybox)):
        missing.append("busybox")
    qemu_path = _which(qemu)
    if qemu_path is None:
        result.append(Check("qemu", False, f"{qemu} not found",
                            apt_install_command(["qemu-system-x86", "qemu-utils"])))
    else:
        version = qemu_version(qemu_path)
        ok = version is not None and version >= MIN_QEMU
        shown = ".".join(map(str, version)) if version else "unknown"
        result.append(Check("qemu", ok, f"{qemu_path} version {shown} (need >= 7.2)",
                            "" if ok else apt_install_command(["qemu-system-x86"])))
    for tool in PACKAGES:
        if tool == "qemu-system-x86_64":
            continue
        ok = tool not in missing
        result.append(Check(tool, ok, "found" if ok else "missing",
                            "" if ok else apt_install_command([PACKAGES[tool]])))
    chosen = accel.choose()
    result.append(Check("accelerator", True, str(chosen)))
    cache = paths.cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        writable = os.access(cache, os.W_OK)
    except OSError:
        writable = False
    result.append(Check("cache dir", writable, str(cache) + ("" if writable else " not writable"),
                        "" if writable else "set NVMEH_CACHE to a writable directory"))
    if writable:
        free = shutil.disk_usage(cache).free / (1 << 30)
        result.append(Check("free disk", free >= MIN_FREE_GB, f"{free:.1f} GiB free in {cache} "
                            f"(need {MIN_FREE_GB} GiB)"))
    if os.geteuid() != 0 and not _which("newuidmap"):
        result.append(Check("unprivileged image build", False, "newuidmap missing",
                            apt_install_command(["uidmap"])))
    return result


def _static(path: Path) -> bool:
    from harness.images import is_static_elf

    with open(path, "rb") as fh:
        return is_static_elf(fh.read(1 << 16))


def fixes(found: list[Check]) -> list[str]:
    """One combined apt-get command for all missing packages, then any other fixes."""
    packages: list[str] = []
    other: list[str] = []
    for c in found:
        if c.ok or not c.fix:
            continue
        m = re.search(r"--no-install-recommends (.+)$", c.fix)
        if m:
            packages += m.group(1).split()
        elif c.fix not in other:
            other.append(c.fix)
    return ([apt_install_command(packages)] if packages else []) + other


def install(commands: list[str]) -> int:
    for command in commands:
        print(f"+ {command}", flush=True)
        code = subprocess.run(command, shell=True).returncode
        if code != 0:
            return code
    return 0
