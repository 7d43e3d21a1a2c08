"""Is this host ready to run VMs? Each check says what is missing and the command that fixes it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.build import qemus
from harness.errors import HarnessError
from harness.machine import accel
from harness.progress import Progress
from harness.util import find_tool

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
    "zstd": "zstd",  # trixie kernels and modules are zstd/xz-compressed
    "ssh": "openssh-client",  # for `python -m harness shell`
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    packages: tuple[str, ...] = ()  # Debian packages that fix it
    advice: str = ""  # what the user must do when no package fixes it


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


def checks(qemu: str = "qemu-system-x86_64", kernel_build: bool = False,
           browser: bool = False) -> list[Check]:
    """What the harness needs on this host; ``kernel_build`` adds what `kernel build` needs,
    ``browser`` the headless browser the report's rendering test uses."""
    result: list[Check] = []
    missing = [tool for tool in PACKAGES if tool != qemu and not find_tool(tool)]
    busybox = Path("/bin/busybox")
    if "busybox" not in missing and not (busybox.exists() and _static(busybox)):
        missing.append("busybox")
    qemu_path, fetch_error = None, None
    if qemus.is_debian(qemu):
        try:  # a private root under the cache: fetched now, as a run would
            qemu_path = qemus.binary(qemu, Progress())
        except HarnessError as exc:
            fetch_error = exc
    else:
        qemu_path = find_tool(qemu)
    if fetch_error is not None:
        result.append(Check("qemu", False, f"{qemu}: {fetch_error}",
                            advice="check the network and the cache directory"))
    elif qemu_path is None:
        result.append(Check("qemu", False, f"{qemu} not found",
                            ("qemu-system-x86", "qemu-utils")))
    else:
        version = qemu_version(qemu_path)
        ok = version is not None and version >= MIN_QEMU
        shown = ".".join(map(str, version)) if version else "unknown"
        result.append(Check("qemu", ok, f"{qemu_path} version {shown} (need >= 7.2)",
                            () if ok else ("qemu-system-x86",)))
    for tool in PACKAGES:
        if tool == "qemu-system-x86_64":
            continue
        ok = tool not in missing
        result.append(Check(tool, ok, "found" if ok else "missing",
                            () if ok else (PACKAGES[tool],)))
    chosen = accel.choose()
    result.append(Check("accelerator", True, str(chosen)))
    cache = paths.cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        writable = os.access(cache, os.W_OK)
    except OSError:
        writable = False
    result.append(Check("cache dir", writable, str(cache) + ("" if writable else " not writable"),
                        advice="" if writable else "set NVMEH_CACHE to a writable directory"))
    if writable:
        free = shutil.disk_usage(cache).free / (1 << 30)
        enough = free >= MIN_FREE_GB
        result.append(Check("free disk", enough, f"{free:.1f} GiB free in {cache} "
                            f"(need {MIN_FREE_GB} GiB)",
                            advice="" if enough else f"free disk space in {cache}, or set "
                            "NVMEH_CACHE to a directory on a larger file system"))
    if kernel_build:
        from harness.build.kbuild import missing_packages

        lacking = tuple(missing_packages())
        result.append(Check("kernel build tools", not lacking,
                            "missing: " + " ".join(lacking) if lacking else "found", lacking))
    if browser:
        found = browser_binary()
        result.append(Check("browser", found is not None, found or "chromium missing",
                            () if found else ("chromium",)))
    if os.geteuid() != 0 and not find_tool("newuidmap"):
        result.append(Check("unprivileged image build", False, "newuidmap missing",
                            ("uidmap",)))
    return result


def _static(path: Path) -> bool:
    from harness.build.images import is_static_elf

    with open(path, "rb") as fh:
        return is_static_elf(fh.read(1 << 16))


def ready(found: list[Check]) -> bool:
    return all(c.ok for c in found)


def fixes(found: list[Check]) -> list[str]:
    """The commands that fix what is missing: one apt-get line for every package."""
    packages = sorted({p for c in found if not c.ok for p in c.packages})
    return [apt_install_command(packages)] if packages else []


def advice(found: list[Check]) -> list[str]:
    """What no command can fix: the user must act."""
    return [f"{c.name}: {c.advice}" for c in found if not c.ok and c.advice]


def install(commands: list[str]) -> int:
    for command in commands:
        print(f"+ {command}", flush=True)
        code = subprocess.run(command, shell=True).returncode
        if code != 0:
            return code
    return 0


def browser_binary() -> str | None:
    """A Chromium that can render the HTML report headless (Debian's, or Google's)."""
    return next((path for name in ("chromium", "chromium-browser", "google-chrome")
                 if (path := find_tool(name))), None)
