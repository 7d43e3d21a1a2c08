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
reported as ever. Later in a run (seen once, in a jump label of ``__schedule`` while an
iteration was cleaned up) the evidence is the site itself: the byte the trap came from is no
int3 now, so the trap was no breakpoint in the kernel's code; the iteration then tested
nothing (:func:`stale_translation`), whatever its modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.reading.oops import Oops

INT3_HEADER = "Oops: int3"
MODULES_LINE = "Modules linked in:"
CODE_LINE = "Code:"
INT3 = "cc"


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


def trapped_byte(oops: Oops) -> str | None:
    """The byte an int3 trap came from, as the report's Code: line shows it now (the byte
    before the one it marks: an int3 leaves RIP past itself), or None if the line lacks it."""
    for line in oops.lines:
        if line.startswith(CODE_LINE):
            code = line[len(CODE_LINE):].split()
            marked = [i for i, byte in enumerate(code) if byte.startswith("<")]
            if marked and marked[0] > 0:
                return code[marked[0] - 1].lower()
    return None


def stale_translation(oops: Oops, accel: str) -> str | None:
    """Why ``oops`` is QEMU's stale translation, not the kernel's: under TCG, an int3 trap
    from a byte that is not an int3 (the kernel's patch of it finished); or None."""
    if accel != "tcg" or not oops.header.startswith(INT3_HEADER):
        return None
    byte = trapped_byte(oops)
    if byte is None or byte == INT3:
        return None
    return (f"the guest crashed on an int3 that is no longer in its code ({oops.title}; the "
            f"byte it trapped on reads {byte} now): TCG ran a stale translation of kernel code "
            "the kernel had patched, so this iteration tested nothing")
