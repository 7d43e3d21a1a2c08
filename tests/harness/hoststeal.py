"""A host that steals from the VM, on purpose: every QEMU this test process started is
frozen (SIGSTOP) for ``share`` of each 10 ms and let go (SIGCONT) for the rest, which is what
a hypervisor's steal or a cgroup's CPU quota does to a QEMU process. The throughput judge
must excuse a healthy driver's seconds on such a host and nothing else.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

PERIOD_S = 0.01


def _descendants(root: int) -> list[int]:
    """The QEMU processes among ``root``'s descendants."""
    parents: dict[int, int] = {}
    names: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            names[int(entry.name)] = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out = []
    for pid, name in names.items():
        if b"qemu-system" not in name:
            continue
        up = parents.get(pid)
        while up and up != root:
            up = parents.get(up)
        if up == root:
            out.append(pid)
    return out


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


@contextmanager
def stolen(share: float, seconds: float = 3600.0, after: tuple[Path, str] | None = None
           ) -> Iterator[None]:
    """Steal ``share`` of the time of this process's QEMUs for ``seconds``: from the start,
    or from when the file ``after[0]`` first holds the text ``after[1]`` (such as a run's
    commands.log and its first fault's command). Every QEMU is let go when the block ends."""
    done = threading.Event()

    def triggered() -> bool:
        if after is None:
            return True
        try:
            return after[1] in after[0].read_text(errors="replace")
        except OSError:
            return False

    def steal() -> None:
        while not done.is_set() and not triggered():
            done.wait(0.05)
        until = time.monotonic() + seconds
        pids, looked = [], 0.0
        while not done.is_set() and time.monotonic() < until:
            if time.monotonic() - looked > 0.5:  # a new QEMU (a restart) is caught within 0.5 s
                pids, looked = _descendants(os.getpid()), time.monotonic()
            _signal(pids, signal.SIGSTOP)
            time.sleep(PERIOD_S * share)
            _signal(pids, signal.SIGCONT)
            done.wait(PERIOD_S * (1 - share))

    thread = threading.Thread(target=steal, name="host-steal", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        _signal(_descendants(os.getpid()), signal.SIGCONT)
