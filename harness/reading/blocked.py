"""The kernel's list of blocked tasks (SysRq ``w``), read into who waits where.

A hung-task report names only the task that sat in one uninterruptible sleep for the whole
detector period. The task it waits for is often missing from it: a worker that sleeps in a
loop (``msleep``), or in ``blk_execute_rq()``'s wait that wakes every few seconds just so the
detector stays quiet, is switched in and out and never reported. SysRq ``w`` lists every task
in an uninterruptible sleep, whatever the detector thinks of it, with its stack and, for a
kernel worker, the work item it runs: the other half of a hang.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from harness.reading.oops import strip_prefix

MARK: Final = "nvmeh: blocked tasks"  # logged just before the dump, which is read from there

_HEADER_RE: Final = re.compile(r"^(?:sysrq|SysRq)\s?: Show Blocked State")
_TASK_RE: Final = re.compile(r"^task:(?P<name>.+?)\s+state:(?P<state>\S+).*?\bpid:\s*(?P<pid>\d+)")
_WORK_RE: Final = re.compile(r"^Workqueue: (?P<queue>\S+) (?P<work>[\w$.]+)")
_FRAME_RE: Final = re.compile(r"^\s*(?P<unreliable>\?\s+)?(?P<func>[A-Za-z_$][\w$.]*)\+0x[0-9a-f]+")
# How every sleep looks from inside: the scheduler, not what the task waits for
_SLEEPING_RE: Final = re.compile(
    r"_*schedule\w*|schedule_\w+|io_schedule\w*|(?:do_|__)?wait_for_common\w*"
    r"|finish_task_switch\w*|context_switch|__switch_to\w*")


@dataclass(frozen=True)
class BlockedTask:
    """One task in the dump: its name and pid, the work item it runs (a kernel worker's
    ``queue work``, else empty) and its reliable frames, innermost first."""

    name: str
    pid: int
    work: str
    frames: tuple[str, ...]

    def waits_in(self, depth: int = 3) -> str:
        """Where it waits: its innermost frames past the scheduler, the caller last."""
        own = [f for f in self.frames if not _SLEEPING_RE.fullmatch(f)]
        return " < ".join(own[:depth]) or "?"

    @property
    def line(self) -> str:
        work = f", {self.work}" if self.work else ""
        return f"{self.name} (pid {self.pid}{work}) waits in {self.waits_in()}"


def parse(text: str) -> list[BlockedTask]:
    """The tasks of the last SysRq ``w`` dump in ``text`` (``dmesg`` or console output)."""
    lines = [strip_prefix(line) for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if _HEADER_RE.match(line.lstrip())]
    if not starts:
        return []
    chunks: list[list[str]] = []  # one per task: its task: line and what follows it
    for line in lines[starts[-1] + 1:]:
        if _TASK_RE.match(line.lstrip()):
            chunks.append([line])
        elif chunks:
            chunks[-1].append(line)
    return [_task(chunk) for chunk in chunks]


def _task(chunk: Sequence[str]) -> BlockedTask:
    head = _TASK_RE.match(chunk[0].lstrip())
    assert head is not None
    work, frames = "", []
    for line in chunk[1:]:
        if (found := _WORK_RE.match(line.lstrip())) is not None:
            work = f"{found['queue']} {found['work'].split('.', 1)[0]}"
        elif (frame := _FRAME_RE.match(line)) is not None and not frame["unreliable"]:
            frames.append(frame["func"].split(".", 1)[0])
    return BlockedTask(head["name"], int(head["pid"]), work, tuple(frames))


MOST_LISTED = 12


def summary(tasks: Sequence[BlockedTask]) -> str:
    """One line per blocked task (at most :data:`MOST_LISTED`), under a heading; empty
    without any."""
    if not tasks:
        return ""
    more = len(tasks) - MOST_LISTED
    return "\n".join(["blocked tasks (SysRq w):", *(f"  {t.line}" for t in tasks[:MOST_LISTED]),
                      *([f"  and {more} more"] if more > 0 else [])])
