"""The snapshot cache keeps the most recently used snapshots and lets the rest go."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.machine.snapshot import prune


def _snapshot(root: Path, name: str, used_ago: float, done: bool = True) -> Path:
    path = root / name
    path.mkdir()
    (path / "state").write_bytes(b"x")
    stamp = path / ("used" if done else "state")
    if done:
        (path / "done").write_text("")
        stamp.touch()
    (root / f"{name.split('.')[0]}.lock").touch()
    when = time.time() - used_ago
    for p in (stamp, path):
        os.utime(p, (when, when))
    return path


def test_keeps_the_most_recently_used_and_what_ran_lately(tmp_path: Path) -> None:
    fresh = [_snapshot(tmp_path, f"fresh{i}", used_ago=60 * i) for i in range(3)]
    stale = [_snapshot(tmp_path, f"stale{i}", used_ago=86400 * (i + 1)) for i in range(3)]
    gone = prune(tmp_path, keep=4, idle=3600)
    # Four kept by recency (the three fresh ones and the newest stale one), the rest went.
    assert sorted(gone) == sorted(stale[1:])
    assert all(p.exists() for p in fresh + stale[:1])
    assert not any(p.exists() or p.with_suffix(".lock").exists() for p in stale[1:])


def test_beyond_keep_but_in_use_within_the_hour_stays(tmp_path: Path) -> None:
    recent = [_snapshot(tmp_path, f"s{i}", used_ago=10 * i) for i in range(5)]
    assert prune(tmp_path, keep=2, idle=3600) == []
    assert all(p.exists() for p in recent)


def test_half_made_snapshots_go_once_idle_but_not_while_being_made(tmp_path: Path) -> None:
    crashed = _snapshot(tmp_path, "a.tmp", used_ago=7200, done=False)
    making = _snapshot(tmp_path, "b.tmp", used_ago=5, done=False)
    assert prune(tmp_path, keep=24, idle=3600) == [crashed]
    assert making.exists() and not crashed.exists()
    assert (tmp_path / "a.lock").exists(), "a lock another run may hold was removed"
