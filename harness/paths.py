"""Where the harness keeps things: the image cache, its own recipe files, per-run scratch.

Scratch directories carry the owner's pid in their name, so a run that was SIGKILLed (and
could not clean up) has its leftovers removed by the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
GUESTS = PROJECT / "guests"
GUESTS_LIB = GUESTS / "lib"  # shell functions sent with the guest commands that call them
IMAGES = PROJECT / "images"


def cache_dir() -> Path:
    """``$NVMEH_CACHE``, else ``$XDG_CACHE_HOME/nvme-harness``, else ``~/.cache/nvme-harness``."""
    if env := os.environ.get("NVMEH_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nvme-harness"


def scratch_root() -> Path:
    root = Path(tempfile.gettempdir()) / f"nvmeh-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_scratch() -> list[Path]:
    """Remove scratch dirs whose owning process is gone; returns what was removed."""
    removed = []
    for d in scratch_root().glob("run-*"):
        try:
            pid = int(d.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def make_scratch(prefix: str) -> Path:
    """A private (0700) directory for one VM: QMP socket, keys, NVMe backing files."""
    return Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-{prefix}-", dir=scratch_root()))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing): one builder per cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
