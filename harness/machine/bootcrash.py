"""Which crashed boots are QEMU's doing, not the guest kernel's: the one kind started again.

Under TCG, a guest kernel that patches its own code while another vCPU runs it (a static key
switched by text_poke_bp: int3 over the first byte, the rest, then the first byte back, with an
IPI to every CPU between steps) can later trap on the int3 of a translation QEMU kept from the
middle of the patching. The kernel finds no patch in progress at that address and dies with
"Oops: int3" at a site whose bytes (the Code: line) already hold the finished instruction.
Seen here once in a few hundred boots, at the late initcall that switches
``__sched_clock_stable`` (sched_clock_cpu+0x9), before any module was loaded; KVM runs the
CPU's own code and has no such translations.

A boot is started again only on that evidence: TCG, the first report an int3 trap, and no module
loaded at all, so the driver under test cannot be part of it. Anything else a boot prints is
reported as ever.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.reading.oops import Oops

INT3_HEADER = "Oops: int3"
MODULES_LINE = "Modules linked in:"


def modules_linked(oops: Oops) -> list[str] | None:
    """The modules a report lists as loaded (None if it has no such line)."""
    for line in oops.lines:
        if line.startswith(MODULES_LINE):
            return line[len(MODULES_LINE):].split()
    return None


def restartable(oopses: Sequence[Oops], accel: str) -> str | None:
    """Why a boot that crashed with ``oopses`` may be started again, or None if it may not."""
    if accel != "tcg" or not oopses:
        return None
    first = oopses[0]
    if not first.header.startswith(INT3_HEADER):
        return None
    if modules_linked(first) != []:
        return None
    return (f"the boot crashed before any module was loaded ({first.title}): TCG ran a stale "
            "translation of kernel code the kernel had just patched")
