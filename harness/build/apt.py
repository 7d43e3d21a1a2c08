"""Debian packages from any suite, without touching the host's apt configuration.

Each suite (bullseye, bookworm, trixie, ...) gets a private apt state under the cache: its own
sources list, package lists and archive cache. The host's sources and installed packages are
never changed, so a bookworm host can fetch a trixie kernel or a bullseye linux-source.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from harness import paths
from harness.errors import HostNotReady, ImageBuildError
from harness.util import run_tool

MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
LISTS_MAX_AGE_S = 7 * 24 * 3600  # kernels move on in point releases; refresh weekly


class Suite:
    """apt-get and apt-cache, pointed at one Debian suite only."""

    def __init__(self, name: str, mirror: str = MIRROR) -> None:
        self.name = name
        self.mirror = mirror
        self.root = paths.cache_dir() / "apt" / name

    def _options(self) -> list[str]:
        return ["-o", f"Dir::Etc::SourceList={self.root / 'sources.list'}",
                "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", f"Dir::State::Lists={self.root / 'lists'}",
                "-o", f"Dir::Cache={self.root / 'cache'}",
                "-o", "Debug::NoLocking=1",
                # downloads land in the caller's directory, which _apt may not enter
                "-o", "APT::Sandbox::User=root"]

    def _stamp(self) -> Path:
        return self.root / "updated"

    def update(self, force: bool = False) -> None:
        """Fetch the suite's package lists when missing, older than a week, or ``force``."""
        stamp = self._stamp()
        if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE_S:
            return
        if not shutil.which("apt-get"):
            raise HostNotReady("apt-get is missing: Debian kernels need a Debian-like host")
        if not KEYRING.exists():
            raise HostNotReady(f"{KEYRING} is missing: apt-get install debian-archive-keyring")
        with paths.locked(self.root / "lock"):
            (self.root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
            (self.root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
            (self.root / "sources.list").write_text(self.sources_list())
            run_tool(["apt-get", *self._options(), "update"],
                     f"apt-get update for Debian {self.name} ({self.mirror})")
            stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))

    def depends_on(self, metapackage: str, prefix: str) -> str:
        """The dependency of ``metapackage`` whose name starts with ``prefix``."""
        def query() -> str:
            out = run_tool(["apt-cache", *self._options(), "depends", "--no-recommends",
                            "--no-suggests", metapackage], f"apt-cache depends {metapackage}")
            for line in out.splitlines():
                name = line.strip().removeprefix("Depends:").strip()
                if line.strip().startswith("Depends:") and name.startswith(prefix):
                    return name
            raise ImageBuildError(
                f"Debian {self.name} has no {metapackage} depending on {prefix}*")
        return self._memo(f"depends {metapackage} {prefix}", query)

    def field(self, package: str, field: str) -> str:
        def query() -> str:
            out = run_tool(["apt-cache", *self._options(), "show", "--no-all-versions",
                            package], f"apt-cache show {package} (Debian {self.name})")
            for line in out.splitlines():
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
            raise ImageBuildError(f"apt-cache show {package} has no {field} field")
        return self._memo(f"field {package} {field}", query)

    def _memo(self, key: str, query: Callable[[], str]) -> str:
        """Answers are kept until the lists change: apt-cache costs a second per call, and
        every VM start resolves its kernel."""
        self.update()
        memo_file = self.root / "answers.json"
        stamp = str(self._stamp().stat().st_mtime_ns)
        try:
            memo = json.loads(memo_file.read_text())
        except (OSError, ValueError):
            memo = {}
        if memo.get("lists") != stamp:
            memo = {"lists": stamp, "answers": {}}
        if key not in memo["answers"]:
            memo["answers"][key] = query()
            tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(memo, indent=1))
            os.replace(tmp, memo_file)
        answer: str = memo["answers"][key]
        return answer

    def download(self, packages: list[str], dest: Path) -> list[Path]:
        """``apt-get download`` into ``dest``; refreshes the lists once if the mirror moved on."""
        self.update()
        dest.mkdir(parents=True, exist_ok=True)
        self._fetch(["apt-get", *self._options(), "download", *packages],
                    f"download of {' '.join(packages)} from Debian {self.name}", cwd=dest)
        return sorted(dest.glob("*.deb"))

    def download_closure(self, packages: list[str], dest: Path) -> list[Path]:
        """``packages`` and everything they depend on (not what they recommend), as if
        installed on an empty system, downloaded into ``dest``: a root of their own."""
        self.update()
        (dest / "partial").mkdir(parents=True, exist_ok=True)
        status = dest / "status"
        status.write_text("")  # nothing counts as installed
        cmd = ["apt-get", *self._options(), "-o", f"Dir::State::status={status}",
               "-o", f"Dir::Cache::archives={dest}", "-o", "APT::Install-Recommends=false",
               "--download-only", "--yes", "install", *packages]
        self._fetch(cmd, f"download of {' '.join(packages)} and its dependencies from Debian "
                    f"{self.name}")
        return sorted(dest.glob("*.deb"))

    def _fetch(self, cmd: list[str], what: str, cwd: Path | None = None) -> None:
        """Run an apt-get that downloads; refreshes the lists once if the mirror moved on
        (an old version can vanish from it)."""
        try:
            run_tool(cmd, what, cwd=cwd)
        except ImageBuildError:
            self.update(force=True)
            run_tool(cmd, what, cwd=cwd)

    def sources_list(self) -> str:
        """The suite with its updates and security suites: kernels move on in all three."""
        return "".join(f"deb [signed-by={KEYRING}] {url} {suite} main\n" for url, suite in (
            (self.mirror, self.name), (self.mirror, f"{self.name}-updates"),
            (SECURITY, f"{self.name}-security")))
