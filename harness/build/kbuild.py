"""``kernel build SRC``: a test kernel from a source tree, configured for the harness.

The config is a base (``x86_64_defconfig`` unless told otherwise) with
``images/debug-kernel.config`` merged on top (plus ``images/kasan.config`` with ``--kasan``).
The tree is configured again only when the base or a fragment changed, so the next call is an
incremental ``make``. The built tree is what ``--kernel SRC`` boots.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.errors import BadInput, HarnessError, HostNotReady
from harness.progress import Progress
from harness.util import digest

FRAGMENT = paths.IMAGES / "debug-kernel.config"
KASAN_FRAGMENT = paths.IMAGES / "kasan.config"
STAMP = ".nvmeh-config"  # in the tree: which base and fragments its .config was made from
# Host tools a kernel build needs, with the Debian package of each.
TOOLS = {"make": "make", "gcc": "gcc", "flex": "flex", "bison": "bison", "bc": "bc",
         "perl": "perl"}
HEADERS = {"/usr/include/libelf.h": "libelf-dev", "/usr/include/openssl/ssl.h": "libssl-dev"}


class KernelBuildError(HarnessError):
    """make failed; ``detail`` holds the end of its output."""


@dataclass(frozen=True)
class KernelBuild:
    tree: Path
    release: str
    seconds: float
    configured: bool  # whether this call (re)made the .config
    unmet: tuple[str, ...]  # fragment options the final .config does not have as asked


def missing_packages() -> list[str]:
    found = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    return found + [pkg for header, pkg in HEADERS.items() if not Path(header).exists()]


def fragment_options(*fragments: Path) -> dict[str, str]:
    """``CONFIG_X`` -> value, as the fragments ask for them ("n" for "is not set")."""
    wanted: dict[str, str] = {}
    for fragment in fragments:
        for line in fragment.read_text().splitlines():
            if m := re.match(r"(CONFIG_\w+)=(.*)", line.strip()):
                wanted[m.group(1)] = m.group(2)
            elif m := re.match(r"# (CONFIG_\w+) is not set", line.strip()):
                wanted[m.group(1)] = "n"
    return wanted


def unmet_options(config_text: str, wanted: dict[str, str]) -> list[str]:
    """Options Kconfig did not grant (a dependency missing from the base, usually)."""
    have: dict[str, str] = {}
    for line in config_text.splitlines():
        if m := re.match(r"(CONFIG_\w+)=(.*)", line):
            have[m.group(1)] = m.group(2)
    return [f"{opt}={val} (got {have.get(opt, 'n')})" for opt, val in wanted.items()
            if have.get(opt, "n") != val]


def build(src: Path, base: str = "x86_64_defconfig", kasan: bool = False,
          jobs: int | None = None, progress: Progress | None = None) -> KernelBuild:
    progress = progress or Progress()
    src = src.expanduser().resolve()
    if not (src / "Makefile").exists() or not (src / "arch" / "x86").is_dir():
        raise BadInput(f"{src} is not a Linux source tree (no Makefile or arch/x86)")
    if missing := missing_packages():
        raise HostNotReady("a kernel build needs more host packages: apt-get install "
                           + " ".join(sorted(set(missing))))
    fragments = [FRAGMENT] + ([KASAN_FRAGMENT] if kasan else [])
    recipe = digest(base.encode(), *(f.read_bytes() for f in fragments))
    stamp = src / STAMP
    make = ["make", "-C", str(src), "ARCH=x86_64"]
    t0 = time.monotonic()
    configured = False
    if not (src / ".config").exists() or not stamp.exists() or stamp.read_text() != recipe:
        progress.step(f"configuring {src}: {base} + {', '.join(f.name for f in fragments)}")
        _run([*make, base], "make " + base)
        _run([str(src / "scripts" / "kconfig" / "merge_config.sh"), "-m", "-O", str(src),
              str(src / ".config"), *map(str, fragments)], "merge_config.sh", cwd=src)
        _run([*make, "olddefconfig"], "make olddefconfig")
        stamp.write_text(recipe)
        configured = True
    progress.step(f"building {src} (make -j{jobs or os.cpu_count()} bzImage modules)")
    _run([*make, f"-j{jobs or os.cpu_count() or 1}", "bzImage", "modules"], "the kernel build")
    progress.done()
    release = (src / "include" / "config" / "kernel.release").read_text().strip()
    unmet = unmet_options((src / ".config").read_text(), fragment_options(*fragments))
    return KernelBuild(src, release, time.monotonic() - t0, configured, tuple(unmet))


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env={**os.environ, "LC_ALL": "C"})
    if proc.returncode != 0:
        raise KernelBuildError(f"{what} failed (exit {proc.returncode}; its output below)",
                               proc.stdout[-6000:])
