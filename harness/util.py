"""Small helpers shared by the image builders and the host checks."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
from pathlib import Path

from harness.errors import ImageBuildError


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100): a value that was really measured."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def digest(*parts: bytes) -> str:
    """A short stable hash of ``parts``: the cache key of a recipe."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:16]


def digest_files(*files: Path) -> str:
    return digest(*(p.name.encode() + b"\0" + p.read_bytes() for p in files))


def run_tool(cmd: list[str], what: str, cwd: str | Path | None = None) -> str:
    """Run a host tool; on failure raise with its last stderr line, whole stderr as detail."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ImageBuildError(
            f"{what}: {cmd[0]} is not installed (run `python -m harness doctor --install`)"
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise ImageBuildError(f"{what} failed: {tail}", proc.stderr)
    return proc.stdout


def find_tool(tool: str) -> str | None:
    """``tool`` on PATH, or in the sbin directories a non-root PATH often lacks."""
    return shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.access(p, os.X_OK)), None)
