"""``--nvme-src`` on a target: the driver built on the machine itself, against the headers
of the kernel it runs, as its owner builds an out-of-tree module. The modules come back to
this host's cache, keyed by the sources and those headers, and each iteration loads them."""

from __future__ import annotations

import contextlib
import shlex
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.build import driver
from harness.errors import HarnessError
from harness.guest.ssh import Guest
from harness.progress import Progress
from harness.util import digest

BUILDER_VERSION = "target-driver-1"
BUILD_TIMEOUT_S = 1800.0  # a slow machine compiling core.c and pci.c with one CPU


def toolchain_script(release: str) -> str:
    """Shell printing ``headers=DIR`` (the first of the usual places holding a Makefile),
    ``make=PATH`` and ``identity=HASH`` (of the headers' Module.symvers and .config)."""
    r = shlex.quote(release)
    return (f"for d in /lib/modules/{r}/build /usr/src/linux-headers-{r}; do "
            '[ -f "$d/Makefile" ] && { h=$(readlink -f "$d"); echo "headers=$h"; break; }; '
            "done; "
            'echo "make=$(command -v make)"; '
            '[ -n "${h:-}" ] && echo "identity=$(cat "$h/Module.symvers" "$h/.config" '
            '2>/dev/null | sha256sum | cut -c1-16)"; true')


@dataclass(frozen=True)
class Toolchain:
    """What the machine offers for building a module for its running kernel."""

    release: str
    headers: str = ""  # the kernel's build directory; "" when its headers are not installed
    make: str = ""
    identity: str = ""  # of the headers' Module.symvers and .config: what the modules match

    def lacking(self) -> str | None:
        """Why a module cannot be built there, or None."""
        if not self.headers:
            return (f"no headers for its kernel {self.release} (neither /lib/modules/"
                    f"{self.release}/build nor /usr/src/linux-headers-{self.release})")
        if not self.make:
            return "no make"
        return None


def parse_toolchain(release: str, output: str) -> Toolchain:
    found = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    return Toolchain(release, found.get("headers", ""), found.get("make", ""),
                     found.get("identity", ""))


def build(guest: Guest, src: Path, tools: Toolchain, where: str,
          progress: Progress) -> driver.Driver:
    """The driver from ``src`` built on the machine ``guest`` reaches, or from the cache."""
    src = src.expanduser().resolve()
    driver.check_source(src)
    key = digest(BUILDER_VERSION.encode(), tools.release.encode(), tools.identity.encode(),
                 driver.source_hash(src).encode())
    return driver.cached(src, key, lambda dest: _build(guest, src, tools, where, dest,
                                                       progress))


def _build(guest: Guest, src: Path, tools: Toolchain, where: str, dest: Path,
           progress: Progress) -> float:
    t0 = time.monotonic()
    progress.step(f"building the NVMe driver from {src} on {where}, against its "
                  f"{tools.release} headers")
    work = guest.run("mktemp -d /tmp/nvmeh-driver.XXXXXX", timeout=30,
                     check=True).stdout.strip()
    try:
        with tempfile.TemporaryDirectory(prefix="nvmeh-driver-") as tmp:
            tarball = Path(tmp) / "src.tar"
            with tarfile.open(tarball, "w") as tar:
                for f in driver.source_files(src):
                    tar.add(f, arcname=str(f.relative_to(src)))
            guest.put(tarball, f"{work}/src.tar")
            make = " ".join(["make", "-C", shlex.quote(tools.headers), f"M={work}",
                             *driver.make_arguments("$(nproc)")])
            result = guest.run(f"cd {work} && tar -xf src.tar && rm src.tar && {make} 2>&1",
                               timeout=BUILD_TIMEOUT_S)
            # The compiler names the machine's copy; name the user's files instead.
            output = (result.stdout + result.stderr).replace(f"{work}/", f"{src}/")
            if not result.ok:
                raise driver.DriverBuildError(
                    f"the NVMe driver from {src} does not compile on {where} for "
                    f"{tools.release} (compiler output below)", output)
            built = Path(tmp) / "built"
            built.mkdir()
            listing = guest.run(f"ls {work}", timeout=30, check=True).stdout.split()
            for module in driver.MODULES:
                if f"{module}.ko" in listing:
                    guest.get(f"{work}/{module}.ko", built / f"{module}.ko")
            driver.keep(built, output, src, dest)
    finally:
        # a build cut short (Ctrl-C) may still run there; [/] keeps pkill off this shell
        with contextlib.suppress(HarnessError):
            guest.run(f"pkill -f '[/]{work.lstrip('/')}'; rm -rf {work}", timeout=60)
    return time.monotonic() - t0
