"""The kernel's own list of its tasks (SysRq ``w`` or ``t``), read into who waits where.

A hung-task report names only the task that sat in one uninterruptible sleep for the whole
detector period. The task it waits for is often missing from it: a worker that sleeps in a
loop (``msleep``), or in ``blk_execute_rq()``'s wait that wakes every few seconds just so the
detector stays quiet, is switched in and out and never reported. SysRq ``w`` lists every task
in an uninterruptible sleep with its stack and, for a kernel worker, the work item it runs;
SysRq ``t`` lists every task, and the workqueues' work in flight and pending: a worker caught
between two of its sleeps is running, not blocked, and only ``t`` shows it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from harness.reading.oops import strip_prefix

MARK: Final = "nvmeh: blocked tasks"  # logged just before the dump, which is read from there

_HEADER_RE: Final = re.compile(r"^(?:sysrq|SysRq)\s?: Show (?:Blocked )?State")
_TASK_RE: Final = re.compile(r"^task:(?P<name>.+?)\s+state:(?P<state>\S+).*?\bpid:\s*(?P<pid>\d+)")
_WORK_RE: Final = re.compile(r"^Workqueue: (?P<queue>\S+) (?P<work>[\w$.]+)")
_FRAME_RE: Final = re.compile(r"^\s*(?P<unreliable>\?\s+)?(?P<func>[A-Za-z_$][\w$.]*)\+0x[0-9a-f]+")
_QUEUES_RE: Final = re.compile(r"^Showing busy workqueues")
_TASKS_END_RE: Final = re.compile(r"^(?:Sched Debug Version|Showing all locks held)")
_QUEUE_RE: Final = re.compile(r"^workqueue (?P<name>\S+):")
_QUEUE_WORK_RE: Final = re.compile(r"^\s+(?:in-flight|pending|delayed):")
# How every sleep looks from inside: the scheduler, not what the task waits for
_SLEEPING_RE: Final = re.compile(
    r"_*schedule\w*|schedule_\w+|io_schedule\w*|(?:do_|__)?wait_for_common\w*"
    r"|finish_task_switch\w*|context_switch|__switch_to\w*")
OURS: Final = re.compile(r"nvme|blk|block")  # the workqueues a hang here runs on


@dataclass(frozen=True)
class BlockedTask:
    """One task in the dump: its name, pid and state (``D``, or ``R`` between two sleeps),
    the work item it runs (a kernel worker's ``queue work``, else empty), its reliable frames
    (innermost first) and its lines in the dump."""

    name: str
    pid: int
    state: str
    work: str
    frames: tuple[str, ...]
    lines: tuple[str, ...] = ()

    def waits_in(self, depth: int = 3) -> str:
        """Where it waits: its innermost frames past the scheduler, the caller last."""
        own = [f for f in self.frames if not _SLEEPING_RE.fullmatch(f)]
        return " < ".join(own[:depth]) or "?"

    @property
    def line(self) -> str:
        work = f", {self.work}" if self.work else ""
        running = ", running" if self.state.startswith("R") else ""
        return f"{self.name} (pid {self.pid}{work}{running}) waits in {self.waits_in()}"


MOST_LISTED = 12


@dataclass(frozen=True)
class Dump:
    """What a dump shows of a hang: the tasks blocked (or, in a full dump, running a work
    item of ours), and our workqueues' work in flight and pending."""

    tasks: tuple[BlockedTask, ...] = ()
    queues: tuple[str, ...] = ()  # "workqueue nvme-reset-wq: in-flight: 101:nvme_reset_work"

    @property
    def summary(self) -> str:
        """One line per task (at most :data:`MOST_LISTED`) and per busy workqueue of ours,
        under a heading; empty without any task."""
        if not self.tasks:
            return ""
        more = len(self.tasks) - MOST_LISTED
        return "\n".join(["blocked tasks (SysRq):",
                          *(f"  {t.line}" for t in self.tasks[:MOST_LISTED]),
                          *([f"  and {more} more"] if more > 0 else []),
                          *(f"  {q}" for q in self.queues)])

    @property
    def text(self) -> str:
        """The dump's lines that show them, for the evidence; empty without any task."""
        if not self.tasks:
            return ""
        return "\n".join([*(ln for t in self.tasks for ln in t.lines), *self.queues])


def parse(text: str) -> Dump:
    """The tasks of the last SysRq ``w`` or ``t`` dump in ``text`` (``dmesg`` or console
    output) that explain a hang: every task in an uninterruptible sleep, and every worker of
    our workqueues whatever its state; and our workqueues' busy work."""
    lines = [strip_prefix(line) for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if _HEADER_RE.match(line.lstrip())]
    if not starts:
        return Dump()
    chunks: list[list[str]] = []  # one per task: its task: line and what follows it
    queues: list[str] = []
    queue = ""
    for line in lines[starts[-1] + 1:]:
        head = line.lstrip()
        if _QUEUES_RE.match(head) or _TASKS_END_RE.match(head):
            queue = "-"  # no more tasks: the scheduler's tables, the locks, the workqueues
        elif queue:
            if (found := _QUEUE_RE.match(head)) is not None:
                queue = found["name"]
            elif OURS.search(queue) and _QUEUE_WORK_RE.match(line):
                queues.append(f"workqueue {queue}: {head}")
        elif _TASK_RE.match(head):
            chunks.append([line])
        elif chunks:
            chunks[-1].append(line)
    tasks = (_task(chunk) for chunk in chunks)
    return Dump(tuple(t for t in tasks if t.state.startswith("D")
                      or (t.work and OURS.search(t.work.split()[0]))), tuple(queues))


def _task(chunk: Sequence[str]) -> BlockedTask:
    head = _TASK_RE.match(chunk[0].lstrip())
    assert head is not None
    work, frames = "", []
    for line in chunk[1:]:
        if (found := _WORK_RE.match(line.lstrip())) is not None:
            work = f"{found['queue']} {found['work'].split('.', 1)[0]}"
        elif (frame := _FRAME_RE.match(line)) is not None and not frame["unreliable"]:
            frames.append(frame["func"].split(".", 1)[0])
    return BlockedTask(head["name"], int(head["pid"]), head["state"], work, tuple(frames),
                       tuple(chunk))

