"""The guest kernel's blocked tasks, dumped on demand (SysRq) and read back from its log.

A dump changes nothing: it only prints. In a VM it is SysRq ``t``, every task and the
workqueues' work (a worker between two of its sleeps is running, not blocked); on a lab
machine ``w``, the blocked tasks only, so that its thousands of tasks do not flush its log.
"""

from __future__ import annotations

import shlex

from harness.guest.ssh import Guest
from harness.reading import blocked


def blocked_tasks(guest: Guest, every_task: bool) -> blocked.Dump:
    """The guest's blocked tasks (``every_task``: from a dump of every task), none where its
    kernel has no SysRq."""
    mark = shlex.quote(blocked.MARK)
    key = "t" if every_task else "w"
    res = guest.run(f"echo {mark} > /dev/kmsg && echo {key} > /proc/sysrq-trigger && "
                    f"dmesg | awk -v m={mark} 'index($0, m) {{out = \"\"}} "
                    "{out = out $0 \"\\n\"} END {printf \"%s\", out}'", timeout=30)
    return blocked.parse(res.stdout) if res.ok else blocked.Dump()
