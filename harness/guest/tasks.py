"""The guest kernel's blocked tasks, dumped on demand (SysRq ``w``) and read back from its log.

The dump changes nothing: it only prints, so it is as safe on a lab machine as in a VM.
"""

from __future__ import annotations

import shlex
from typing import NamedTuple

from harness.guest.ssh import Guest
from harness.reading import blocked
from harness.reading.oops import strip_prefix

MAX_DUMP_LINES = 400  # fio's jobs blocked in I/O can fill pages; the summary names them all


class BlockedTasks(NamedTuple):
    """Every task of the guest in an uninterruptible sleep, and the dump they were read from
    (cut at :data:`MAX_DUMP_LINES`, without the log's time stamps)."""

    tasks: list[blocked.BlockedTask]
    dump: str

    @property
    def summary(self) -> str:
        return blocked.summary(self.tasks)


def blocked_tasks(guest: Guest) -> BlockedTasks:
    """The guest's blocked tasks, none where its kernel has no SysRq."""
    mark = shlex.quote(blocked.MARK)
    res = guest.run(f"echo {mark} > /dev/kmsg && echo w > /proc/sysrq-trigger && "
                    f"dmesg | awk -v m={mark} 'index($0, m) {{out = \"\"}} "
                    "{out = out $0 \"\\n\"} END {printf \"%s\", out}'", timeout=30)
    if not res.ok:
        return BlockedTasks([], "")
    tasks = blocked.parse(res.stdout)
    lines = [strip_prefix(line) for line in res.stdout.splitlines()[:MAX_DUMP_LINES]]
    return BlockedTasks(tasks, "\n".join(lines) if tasks else "")
