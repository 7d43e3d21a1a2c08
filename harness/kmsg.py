"""Kernel log scanning: find oopses, WARNINGs, lockups and panics in guest console output.

The harness streams the guest's serial console (or ``dmesg`` output) through an
:class:`OopsDetector`.  Every kernel problem report becomes an :class:`Oops` carrying a short
syzkaller-style title (``"WARNING in nvme_reset_work"``), so a failed test names the bug in one
line and repeats of the same bug fold into one entry.  Only report *headers* printed by the
kernel's own bug machinery start a report, so the noisy-but-healthy messages of an NVMe
reset-under-load test (I/O timeouts, aborts, I/O errors) never count.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

__all__ = [
    "ALARMS",
    "CONTROLLER_GIVEN_UP",
    "IDLE_LINE_LIMIT",
    "MAX_REPORT_LINES",
    "Oops",
    "OopsDetector",
    "OopsKind",
    "accepted_alarms",
    "accepts_give_up",
    "dedupe",
    "find_alarms",
    "scan",
    "strip_prefix",
]

OopsKind = Literal[
    "panic",
    "oops",
    "bug",
    "warning",
    "gpf",
    "hung_task",
    "lockdep",
    "kasan",
    "ubsan",
    "soft_lockup",
    "rcu_stall",
    "hard_lockup",
]

MAX_REPORT_LINES: Final = 200
"""A report is cut (and returned) at this many lines so a runaway trace cannot grow forever."""

IDLE_LINE_LIMIT: Final = 40
"""A report ends after this many consecutive lines that look nothing like a report body."""

_MAX_PARTIAL: Final = 64 * 1024  # an unterminated "line" this long is garbage: process it anyway


@dataclass(frozen=True)
class Oops:
    """One kernel problem report found in the log.

    ``lines`` are the report's lines with console prefixes (timestamps, levels, caller ids)
    removed and blank lines dropped, from the header through the end of the trace.
    ``fatal`` is True for panics: nothing useful follows, so the harness stops waiting.
    ``count`` is how many times this title occurred (>1 only after :func:`dedupe`).
    """

    kind: OopsKind
    title: str
    lines: tuple[str, ...]
    fatal: bool = False
    count: int = 1

    @property
    def header(self) -> str:
        """The line that started the report."""
        return self.lines[0] if self.lines else ""


# --------------------------------------------------------------------------- line prefixes

_ANSI_RE: Final = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PREFIX_RE: Final = re.compile(
    r"^(?:"
    r"<\d{1,3}>"  # level from /proc/kmsg or dmesg -r
    r"|\d+,\d+,\d+,[^;]*;"  # /dev/kmsg record header
    r"|(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local\d)\s*:"
    r"(?:emerg|alert|crit|err|warn|notice|info|debug)\s*: "  # dmesg -x
    r"|\[\s*\d+\.\d+\]\s?"  # printk timestamp
    r"|\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d [\d:]{8} \d{4}\]\s?"  # dmesg -T
    r"|\[\s*[TC]\d+\]\s?"  # printk caller id (CONFIG_PRINTK_CALLER)
    r")*"
)


def strip_prefix(line: str) -> str:
    """``line`` without console/dmesg prefixes, escape sequences and trailing whitespace.

    Leading whitespace of the message itself is kept: it is how stack entries are recognised.
    """
    line = _ANSI_RE.sub("", line).replace("\x00", "")
    return _PREFIX_RE.sub("", line, count=1).rstrip()


# --------------------------------------------------------------------------- report headers

_PANIC_RE: Final = re.compile(r"^Kernel panic - not syncing:\s*(?P<reason>.*)$")
_SANITIZER_BUG_RE: Final = re.compile(r"^BUG: (?P<tool>K[A-Z]+SAN|KFENCE): (?P<rest>.*)$")
_KASAN_RE: Final = re.compile(r"^BUG: KASAN: (?P<what>\S+)(?: in (?P<where>.*))?$")
_SOFT_LOCKUP_RE: Final = re.compile(r"^(?:(?:NMI )?watchdog: )?BUG: soft lockup\b")
_BUG_RE: Final = re.compile(r"^BUG: (?P<rest>.+)$")
_KERNEL_BUG_RE: Final = re.compile(r"^kernel BUG at (?P<loc>[^!\s]+)")
_DIE_RE: Final = re.compile(
    r"^(?P<prefix>(?:Internal error: |Oops(?: - [\w ]+)?: )*)"
    r"(?P<desc>(?:general protection fault|invalid opcode|stack segment|double fault"
    r"|divide error|int3|alignment check|segment not present|invalid TSS)[^:]*?)?"
    r":? ?[0-9a-f]+ \[#\d+\]"
)
_WARNING_RE: Final = re.compile(r"^WARNING: (?:CPU: \d+ PID: \d+ at |at |\S+:\d+ at )")
_LOCKDEP_RES: Final = (
    re.compile(r"^WARNING: (?P<what>.*\b(?:(?:un)?lock(?:s|ing)?|RCU|contention)\b.*)$"),
    re.compile(r"^\[ INFO: (?P<what>.+?) \]$"),
    re.compile(r"^INFO: (?P<what>trying to register non-static key)"),
)
_HUNG_TASK_RE: Final = re.compile(r"^INFO: task .+:\d+ blocked for more than \d+ seconds")
_RCU_STALL_RE: Final = re.compile(
    r"^(?:rcu: )?INFO: rcu\w* (?:self-)?detected (?:expedited )?stalls? on"
)
_HARD_LOCKUP_RE: Final = re.compile(
    r"^(?:(?:NMI )?watchdog: )?(?:CPU\d+: )?Watchdog detected hard LOCKUP on cpu \d+"
)
_UBSAN_RE: Final = re.compile(r"^UBSAN: (?P<rest>.+)$")
_UBSAN_LOC_RE: Final = re.compile(r"^(?P<what>.+?) in (?P<loc>\S+?:\d+)(?::\d+)?$")
_ARM64_FAULT_RE: Final = re.compile(r"^Unable to handle kernel (?P<what>.+?) at virtual address")

# --------------------------------------------------------------------------- report bodies

_END_MARKER_RE: Final = re.compile(r"^-+\[ end (?:trace|Kernel panic)\b")
_BOUNDARY_RE: Final = re.compile(r"^(?:={20,}|-+\[ cut here \]-+)$")
_CALL_TRACE_RE: Final = re.compile(r"^(?:Call [Tt]race|stack backtrace):")
_TASK_END_RE: Final = re.compile(r"^\s*</TASK>$")
_FUNC = r"(?P<func>[A-Za-z_$][\w$.]*)"
_FUNC_OFF_RE: Final = re.compile(_FUNC + r"\+0x[0-9a-f]+/0x[0-9a-f]+")
_STACK_RE: Final = re.compile(
    r"^\s*(?:\[<[0-9a-f]+>\]\s*)?(?P<unreliable>\?\s+)?"
    + _FUNC
    + r"\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?(?:\s+\[[^\]]*\])?$"
)
_RIP_RE: Final = re.compile(
    r"^(?:RIP: [0-9a-f]{4}:|EIP: |IP: |pc : )\s*(?:\[<[0-9a-f]+>\]\s*)*" + _FUNC + r"\+0x"
)
_TRACE_LIKE_RES: Final = (
    _STACK_RE,
    re.compile(r"^\s*</?[A-Za-z#][\w#]*>$"),  # <TASK>, </IRQ>, <NMI>, ...
    re.compile(
        r"^\s*(?:Call [Tt]race|Code|Modules linked in|CPU|Hardware name|Workqueue|Tainted"
        r"|Kernel Offset|Exception stack|Stack|irq event stamp|(?:hard|soft)irqs last"
        r"|task|NMI backtrace for cpu|Preemption disabled at|stack backtrace)\b"
    ),
    re.compile(
        r"^(?:[RE]?[A-Z]{2}|R\d{1,2}|CR\d|DR\d|PKRU|ORIG_RAX|[xw]\d{1,2}|pc|lr|sp|pstate)"
        r"\s*:\s*[0-9a-f]"
    ),  # register dump
)

# Frames that say where the report machinery, a lock or the scheduler was, not the bug.
_SKIP_FRAMES: Final = (
    # reporting, traps and fault handling
    r"(?:__)?dump_stack\w*|show_stack|show_trace_log_lvl|show_regs|sched_show_task",
    r"__warn\w*|warn_slowpath\w*|report_bug|handle_bug|fixup_bug|(?:asm_)?exc_\w+",
    r"do_error_trap|do_trap|do_invalid_op|invalid_op|panic|nmi_panic|__die\w*|die",
    r"oops_end|page_fault_oops|kernelmode_fixup_or_oops|no_context|(?:__)?bad_area\w*",
    r"(?:__)?do_page_fault|do_user_addr_fault|handle_page_fault|page_fault",
    r"do_general_protection|general_protection",
    # sanitizers
    r"_*kasan\w*|print_report|print_address_description\w*|__asan_\w+",
    r"check_memory_region\w*|ubsan_\w+|__ubsan_handle_\w+|_*kfence\w*|_*kcsan\w*",
    r"__tsan_\w+|_*kmsan\w*",
    # memory and string helpers, allocator free paths
    r"_*mem(?:cpy|move|set|cmp)\w*|str(?:n?cpy|n?cmp|n?len|scpy|lcpy|n?cat)",
    r"_?copy_(?:to|from)_user\w*|copy_user_\w+|rep_movs_alternative",
    r"kfree|kfree_sensitive|kvfree|_*kmem_cache_free\w*|_*slab_free\w*|do_slab_free",
    # locking and lock debugging
    r"_*lock_acquire\w*|lock_release|lock_acquired|lock_contended|_*lockdep_\w+",
    r"validate_chain|check_prevs?_add|check_noncircular|print_circular_bug\w*",
    r"print_usage_bug|mark_lock\w*|lock_is_held_type|_raw_(?:spin|read|write)_\w+",
    r"do_raw_(?:spin|read|write)_\w+|(?:native_|__pv_)?queued_\w+_slowpath",
    r"_*mutex_lock\w*|__mutex_unlock_slowpath|_*rt_mutex\w*|rt_spin_lock\w*",
    r"_*ww_mutex_lock\w*|rwsem_down_\w+|_*down|_*down_\w+|_*percpu_down_\w+",
    r"percpu_rwsem_wait|_*might_\w+|might_fault|__schedule_bug",
    r"check_preemption_disabled|debug_smp_processor_id",
    # scheduler, sleeping and waiting
    r"_*schedule|schedule_\w+|preempt_schedule\w*|io_schedule\w*|blk_io_schedule",
    r"_*cond_resched|finish_task_switch\w*|context_switch|__switch_to\w*",
    r"(?:do_|__)?wait_for_common\w*|_*wait_for_completion\w*|wait_woken",
    r"(?:__|out_of_line_)?wait_on_bit\w*|bit_wait\w*|_*wait_rcu_gp",
    r"synchronize_(?:rcu|srcu|sched)\w*|__synchronize_srcu|_*flush_work(?:queue)?",
    r"drain_workqueue|msleep\w*|usleep_range\w*|do_nanosleep|hrtimer_nanosleep",
    r"folio_wait_\w+|__folio_lock\w*|wait_on_page_\w+|__lock_page\w*",
    r"csd_lock_wait|smp_call_function\w*",
    # interrupts, timers, NMIs, RCU and watchdog machinery
    r"(?:asm_|__)?sysvec_\w+|(?:asm_|__)?common_interrupt|irq_exit\w*|__irq_exit_rcu",
    r"_*do_softirq\w*|handle_softirqs|_*hrtimer_run_queues|hrtimer_interrupt",
    r"tick_\w+|update_process_times|_*rcu_\w+|print_cpu_stall\w*|check_cpu_stall",
    r"print_other_cpu_stall|(?:arch_)?trigger_\w*backtrace\w*|_*nmi_\w+",
    r"default_do_nmi|end_repeat_nmi|watchdog_\w+|__perf_event_overflow",
    r"perf_event_nmi_handler|\w+_pmu_handle_irq",
    # thread and syscall entry points
    r"ret_from_fork\w*|kthread|worker_thread|process_one_work|process_scheduled_works",
    r"entry_SYSCALL\w*|do_syscall_64|x64_sys_call|smpboot_thread_fn",
    r"cpu_startup_entry|start_secondary|secondary_startup_64\w*|__pfx_\w+",
)
_SKIP_FRAME_RE: Final = re.compile("|".join(_SKIP_FRAMES))


def _is_trace_like(line: str) -> bool:
    """Whether ``line`` looks like part of a report body (frames, registers, dump headers)."""
    return any(r.match(line) for r in _TRACE_LIKE_RES) or _FUNC_OFF_RE.search(line) is not None


def _clean_func(name: str) -> str:
    """``nvme_foo.isra.0``/``.cold``/``.constprop.0`` -> ``nvme_foo``: one bug, one title."""
    return name.split(".", 1)[0]


def _first_frame(lines: Sequence[str], *, skip: bool = True) -> str | None:
    """The first meaningful function of the report, from RIP lines and reliable trace entries.

    Frames are taken in order of appearance so that a register dump inside an interrupt
    trace (RCU stalls) names the interrupted code, not the interrupt handler.
    """
    in_trace = False
    for line in lines[1:]:
        head = line.lstrip()
        if _CALL_TRACE_RE.match(head):
            in_trace = True
            continue
        func: str | None = None
        rip = _RIP_RE.match(head)
        if rip is not None:
            func = rip["func"]
        elif in_trace:
            entry = _STACK_RE.match(line)
            if entry is not None and not entry["unreliable"]:
                func = entry["func"]
        if func is not None:
            func = _clean_func(func)
            if not (skip and _SKIP_FRAME_RE.fullmatch(func)):
                return func
    return None


def _in(prefix: str, func: str | None) -> str:
    return f"{prefix} in {func}" if func else prefix


def _squash(text: str) -> str:
    return " ".join(text.split())


_BUG_DESC_CUT_RE: Final = re.compile(r" for address| at | in process| on CPU#| - |[,:!]")


def _bug_desc(rest: str) -> str:
    """``kernel NULL pointer dereference, address: 0000`` -> ``kernel NULL pointer dereference``."""
    cut = _BUG_DESC_CUT_RE.search(rest)
    desc = rest[: cut.start()] if cut else rest
    return _squash(re.sub(r"\s*\[[^\]]*\]", "", desc)).rstrip(".")


def _strip_offsets(text: str) -> str:
    """``foo+0x1/0x2 [mod] / bar+0x3/0x4`` -> ``foo / bar``."""
    text = re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+(?:\s*\[[^\]]*\])?", "", text)
    return _squash(re.sub(_FUNC, lambda m: _clean_func(m["func"]), text))


def _title(kind: OopsKind, lines: Sequence[str]) -> str:
    """A short, stable, syzkaller-style title; equal bugs get equal titles."""
    head = lines[0].lstrip()
    if kind == "panic":
        m = _PANIC_RE.match(head)
        reason = _squash(m["reason"]) if m else ""
        return f"kernel panic: {reason}" if reason else "kernel panic"
    if kind == "warning":
        where = head.partition(" at ")[2] or head
        m = _FUNC_OFF_RE.search(where)
        if m is not None:
            return f"WARNING in {_clean_func(m['func'])}"
        func = _first_frame(lines)
        if func is not None:
            return f"WARNING in {func}"
        loc = re.search(r"[\w./-]+\.[chS]:\d+", head)
        return f"WARNING at {loc[0]}" if loc else "WARNING"
    if kind == "lockdep":
        for r in _LOCKDEP_RES:
            m = r.match(head)
            if m is not None:
                return _squash(m["what"]).rstrip("!.")
        return _squash(head)
    if kind == "kasan":
        km = _KASAN_RE.match(head)
        what = km["what"] if km else "bug"
        hit = _FUNC_OFF_RE.search(km["where"] or "") if km else None
        func = _clean_func(hit["func"]) if hit else None
        if func is None or _SKIP_FRAME_RE.fullmatch(func):
            func = _first_frame(lines) or func
        return _in(f"KASAN: {what}", func)
    if kind == "ubsan":
        rest = head.partition("UBSAN: ")[2]
        um = _UBSAN_LOC_RE.match(rest)
        if um is not None:
            return f"UBSAN: {_squash(um['what'])} in {um['loc']}"
        return f"UBSAN: {_strip_offsets(rest)}"
    if kind == "hung_task":
        return _in("INFO: task hung", _first_frame(lines))
    if kind == "soft_lockup":
        return _in("BUG: soft lockup", _first_frame(lines))
    if kind == "hard_lockup":
        return _in("BUG: hard lockup", _first_frame(lines))
    if kind == "rcu_stall":
        return _in("INFO: rcu detected stall", _first_frame(lines))
    # oops, bug, gpf: headers of the die()/BUG()/page-fault family
    func = _first_frame(lines)
    if (m := _SANITIZER_BUG_RE.match(head)) is not None:
        return f"{m['tool']}: {_strip_offsets(m['rest'])}"
    if (m := _BUG_RE.match(head)) is not None:
        return _in(f"BUG: {_bug_desc(m['rest'])}", func)
    if (m := _KERNEL_BUG_RE.match(head)) is not None:
        return _in("kernel BUG", func) if func else f"kernel BUG at {m['loc']}"
    if (m := _ARM64_FAULT_RE.match(head)) is not None:
        return _in(f"BUG: unable to handle kernel {m['what']}", func)
    if (m := _DIE_RE.match(head)) is not None and m["desc"]:
        return _in(m["desc"].split(",", 1)[0].strip(), func)
    return _in("Oops", func)


@dataclass(frozen=True)
class _Header:
    kind: OopsKind
    die: bool = False  # a die() line ("Oops: 0000 [#1] ..."): an "---[ end trace" follows


def _classify(head: str) -> _Header | None:
    """The report kind if ``head`` (a prefix-stripped, left-stripped line) starts a report."""
    if _PANIC_RE.match(head):
        return _Header("panic")
    if head.startswith("BUG: KASAN:"):
        return _Header("kasan")
    if _SOFT_LOCKUP_RE.match(head):
        return _Header("soft_lockup")
    m = _BUG_RE.match(head)
    if m is not None:
        rest = m["rest"]
        oops = rest.startswith(("unable to handle", "kernel NULL pointer dereference"))
        return _Header("oops" if oops else "bug")
    if _KERNEL_BUG_RE.match(head):
        return _Header("bug")
    m = _DIE_RE.match(head)
    if m is not None and (m["prefix"] or m["desc"]):
        gpf = (m["desc"] or "").startswith("general protection fault")
        return _Header("gpf" if gpf else "oops", die=True)
    if _WARNING_RE.match(head):
        return _Header("warning")
    if any(r.match(head) for r in _LOCKDEP_RES):
        return _Header("lockdep")
    if _HUNG_TASK_RE.match(head):
        return _Header("hung_task")
    if _RCU_STALL_RE.match(head):
        return _Header("rcu_stall")
    if _HARD_LOCKUP_RE.match(head):
        return _Header("hard_lockup")
    if _UBSAN_RE.match(head):
        return _Header("ubsan")
    if _ARM64_FAULT_RE.match(head):
        return _Header("oops")
    return None


_MARKER_KINDS: Final = frozenset({"warning", "kasan", "ubsan"})


@dataclass
class _Pending:
    """A report whose end has not been seen yet."""

    kind: OopsKind
    lines: list[str]
    die_seen: bool = False
    in_trace: bool = False
    idle: int = 0  # consecutive lines that did not look like report content

    @property
    def expects_marker(self) -> bool:
        """Whether an explicit end line follows the trace ("---[ end trace" or "=====")."""
        return self.die_seen or self.kind in _MARKER_KINDS

    def absorbs_die(self) -> bool:
        """A BUG:/kernel BUG header is followed by its own die() line: same report."""
        return self.kind in ("oops", "bug") and not self.die_seen and not self.in_trace


class OopsDetector:
    """Streaming kernel-log scanner: feed console output in arbitrary chunks.

    Reports are returned by the :meth:`feed` call that completes them: at an end marker, at
    the next report header, when a marker-less trace (hung task, lockdep, stall) ends, or
    after ``idle_limit`` unrelated lines.  A panic is returned as soon as its header line
    is complete because nothing reliable follows it.  ``found`` accumulates every report.
    """

    def __init__(
        self, *, max_lines: int = MAX_REPORT_LINES, idle_limit: int = IDLE_LINE_LIMIT
    ) -> None:
        self.max_lines = max_lines
        self.idle_limit = idle_limit
        self.found: list[Oops] = []
        self._partial = ""  # text after the last line break, carried to the next chunk
        self._pending: _Pending | None = None

    @property
    def panicked(self) -> bool:
        """True once a fatal report (a panic) was seen."""
        return any(o.fatal for o in self.found)

    def feed(self, text: str) -> list[Oops]:
        """Scan a chunk of log text; return the reports it completed."""
        parts = re.split(r"[\r\n]", self._partial + text)
        self._partial = parts.pop()
        if len(self._partial) > _MAX_PARTIAL:
            parts.append(self._partial)
            self._partial = ""
        out: list[Oops] = []
        for raw in parts:
            line = strip_prefix(raw)
            if line:
                out += self._on_line(line)
        return out

    def flush(self) -> list[Oops]:
        """End of stream: process an unterminated last line and close any open report."""
        out = self.feed("\n") if self._partial else []
        return out + self._finish()

    def _on_line(self, line: str) -> list[Oops]:
        head = line.lstrip()
        header = _classify(head)
        out: list[Oops] = []
        rep = self._pending
        if rep is not None:
            if _END_MARKER_RE.match(head):
                rep.lines.append(line)
                return self._finish()
            if header is None:
                return self._continue(rep, line, head)
            if header.die and rep.absorbs_die():
                rep.die_seen = True
                return self._append(rep, line, trace_like=True)
            out = self._finish()
        if header is None:
            return out  # not part of any report
        if header.kind == "panic":
            oops = Oops("panic", _title("panic", [line]), (line,), fatal=True)
            self.found.append(oops)
            return [*out, oops]
        self._pending = _Pending(header.kind, [line], die_seen=header.die)
        return out

    def _continue(self, rep: _Pending, line: str, head: str) -> list[Oops]:
        if _BOUNDARY_RE.match(head):
            if rep.kind in ("kasan", "ubsan") and head.startswith("="):
                rep.lines.append(line)
                return self._finish()
            # "=====" / "[ cut here ]" announce the next report: never part of this one
            return self._finish() if rep.in_trace and not rep.expects_marker else []
        if _CALL_TRACE_RE.match(head):
            rep.in_trace = True
        trace_like = _is_trace_like(line)
        if rep.in_trace and not trace_like and not rep.expects_marker:
            return self._finish()  # the trace is over; this line belongs to someone else
        out = self._append(rep, line, trace_like=trace_like)
        if not out and rep.in_trace and not rep.expects_marker and _TASK_END_RE.match(line):
            return self._finish()
        return out

    def _append(self, rep: _Pending, line: str, *, trace_like: bool) -> list[Oops]:
        rep.lines.append(line)
        rep.idle = 0 if trace_like else rep.idle + 1
        if rep.idle >= self.idle_limit:
            del rep.lines[-rep.idle :]
            return self._finish()
        if len(rep.lines) >= self.max_lines:
            return self._finish()
        return []

    def _finish(self) -> list[Oops]:
        rep, self._pending = self._pending, None
        if rep is None:
            return []
        lines = tuple(rep.lines[: self.max_lines])
        oops = Oops(rep.kind, _title(rep.kind, lines), lines, fatal=rep.kind == "panic")
        self.found.append(oops)
        return [oops]


def dedupe(reports: Iterable[Oops]) -> list[Oops]:
    """One report per distinct title (the first), with ``count`` summed over its repeats.

    A WARN in a loop prints the same report many times; the test failure needs it once.
    """
    first: dict[str, Oops] = {}
    counts: dict[str, int] = {}
    for oops in reports:
        first.setdefault(oops.title, oops)
        counts[oops.title] = counts.get(oops.title, 0) + oops.count
    return [dataclasses.replace(o, count=counts[t]) for t, o in first.items()]


def scan(text: str) -> list[Oops]:
    """All distinct reports in a complete log, in order of first appearance."""
    detector = OopsDetector()
    detector.feed(text)
    detector.flush()
    return dedupe(detector.found)


# --------------------------------------------------------------------------- log windows

_STAMP_RE: Final = re.compile(r"^\[\s*(?P<s>\d+\.\d+)\]")
# What a driver that has recovered must not print again: I/O timeouts and aborts, controller
# resets and disables, a controller given up (the wording of 5.10 to 6.12's nvme driver).
_TROUBLE_RE: Final = re.compile(
    r"nvme\S* .*(?:\btimeout\b|\baborting\b|[Aa]bort status|will reset|reset controller"
    r"|resetting controller|disable controller|Removing after probe failure"
    r"|failed to mark controller|controller is down)")


def stamp(line: str) -> float | None:
    """The printk time stamp of a ``dmesg`` line, in seconds since boot."""
    found = _STAMP_RE.match(line)
    return float(found.group("s")) if found else None


def last_stamp(text: str) -> float:
    """The latest time stamp in ``text`` (0.0 for none): a mark to read the log on from."""
    stamps = [s for s in map(stamp, text.splitlines()) if s is not None]
    return max(stamps, default=0.0)


def lines_after(text: str, mark: float, until: float = float("inf")) -> list[str]:
    """The lines of ``dmesg`` output stamped after ``mark`` (and not after ``until``)."""
    return [ln for ln in text.splitlines()
            if (s := stamp(ln)) is not None and mark < s <= until]


def is_recovery_trouble(line: str) -> bool:
    return _TROUBLE_RE.search(strip_prefix(line)) is not None


_IO_TIMEOUT_RE: Final = re.compile(r"nvme\S*: I/O (?:tag )?\d+ .*QID \d+ timeout")


def io_timeouts(text: str, mark: float) -> list[str]:
    """The driver's I/O timeout lines in ``dmesg`` output after ``mark`` (never the boot
    command line's ``nvme_core.io_timeout=``)."""
    return [ln for ln in lines_after(text, mark) if _IO_TIMEOUT_RE.search(ln)]


# ------------------------------------------------------------------ requeues (ftrace)

@dataclass(frozen=True)
class Requeue:
    """One request the block layer put back on its queue (the block_rq_requeue tracepoint)."""

    at: float  # seconds since boot, the kernel log's clock
    device: str  # "major,minor"
    sector: int


# "  kworker/0:1H-35  [000] d..1.  14.061234: block_rq_requeue: 259,0 W () 1234 + 8 [0]"
_REQUEUE_RE: Final = re.compile(
    r"\s(?P<at>\d+\.\d+): block_rq_requeue: (?P<dev>\d+,\d+) \S+ \(.*?\) (?P<sector>\d+) \+")


def parse_requeues(trace: str) -> list[Requeue]:
    """The requeues in the text of the guest's ftrace buffer."""
    return [Requeue(float(m.group("at")), m.group("dev"), int(m.group("sector")))
            for m in map(_REQUEUE_RE.search, trace.splitlines()) if m]


def requeue_bursts(requeues: Sequence[Requeue], gap: float = 0.5) -> list[tuple[float, int]]:
    """(time, count) of each burst of requeues: one burst per reset that requeued."""
    bursts: list[tuple[float, int]] = []
    last = float("-inf")
    for r in sorted(requeues, key=lambda r: r.at):
        if r.at - last > gap:
            bursts.append((r.at, 0))
        bursts[-1] = (bursts[-1][0], bursts[-1][1] + 1)
        last = r.at
    return bursts


def requeued_note(requeued: Sequence[Requeue]) -> str:
    """What a failure's message adds when the reset before it requeued requests."""
    return f"; {len(requeued)} request(s) had been requeued by the last reset" if requeued else ""


def requeued_lines(requeued: Sequence[Requeue], most: int = 16) -> list[str]:
    """Evidence lines for requeued requests, stamped like the kernel log."""
    return [f"[{r.at:12.6f}] requeued by the last reset: {r.device} sector {r.sector}"
            for r in requeued[:most]]


@dataclass(frozen=True)
class Instability:
    """A recovery that did not hold, as the kernel log (and the requeue trace) tell it."""

    trouble: tuple[str, ...]  # timeouts, aborts, resets after the recovery
    requeued: tuple[Requeue, ...]  # what the last reset put back (before the trouble)

    @property
    def message(self) -> str:
        return (f"{len(self.trouble)} kernel log line(s) of timeouts or resets after the last "
                f"recovery, first: {self.trouble[0].strip()}{requeued_note(self.requeued)}")

    @property
    def evidence(self) -> str:
        return "\n".join([*requeued_lines(self.requeued), *self.trouble[-20:]])


def instability(text: str, previous: float, recovered: float,
                requeues: Callable[[], Sequence[Requeue]] = tuple) -> Instability | None:
    """What ``dmesg`` output shows of trouble after the recovery at ``recovered`` (the one
    before it at ``previous``); None if the recovery held.

    A reset that finds commands in flight requeues them. When requests time out on a healthy
    device right after a reset that requeued some, the reset's requeue path went wrong: that
    tells such a bug from others that also end in timeouts.
    """
    trouble = tuple(ln for ln in lines_after(text, recovered) if is_recovery_trouble(ln))
    if not trouble:
        return None
    began = stamp(trouble[0]) or recovered
    # read only when there is trouble to explain; up to the trouble, not to the recovery's
    # mark, which is only the latest log line when the recovery was seen
    return Instability(trouble, tuple(r for r in requeues() if previous < r.at < began))


# ------------------------------------------------------------------ the driver's own alarms

@dataclass(frozen=True)
class Alarm:
    """A line the NVMe driver prints, not as a WARNING, when it meets an impossible state or
    gives a controller up: a finding of its own kind (syzkaller's pkg/report style table)."""

    code: str  # stable: failures and known-bug records name it
    pattern: re.Pattern[str]  # searched in a prefix-stripped kernel log line
    meaning: str
    kernels: tuple[str, ...]  # Debian series whose driver prints it (sources checked)
    # A give-up: some scenarios end that way by design and may declare it accepted
    # (accepts_give_up); the rest are never acceptable.
    give_up: bool = False


_HEX = r"0x[0-9a-f]+"  # the kernel's %#x (0 is "0x0")

ALARMS: Final[tuple[Alarm, ...]] = (
    Alarm("alarm-invalid-cqe-id",
          re.compile(r"nvme\d+: invalid id \d+ completed on queue \d+"),
          "a completion queue entry matched no request in flight and was dropped (a stale, "
          "duplicate or corrupt completion: nvme_handle_cqe)",
          ("5.10", "6.1", "6.12")),
    Alarm("alarm-genctr-mismatch",
          re.compile(rf"nvme\d+: request {_HEX} genctr mismatch \(got {_HEX} expected {_HEX}\)"),
          "a completion named a request of an older generation of its tag: a stale completion "
          "of a request already reused (nvme_find_rq)",
          ("5.10", "6.1", "6.12")),
    Alarm("alarm-unknown-tag",
          re.compile(rf"^could not locate request for tag {_HEX}"),
          "a completion named a tag with no request at all (nvme_find_rq)",
          ("5.10", "6.1", "6.12")),
    Alarm("alarm-removed-after-probe-failure",
          re.compile(r"nvme\d+: Removing after probe failure status: -?\d+"),
          "a reset or probe failed and the driver removed the controller (nvme_reset_work)",
          ("5.10", "6.1"), give_up=True),
    Alarm("alarm-disabled-after-reset-failure",
          re.compile(r"nvme\d+: Disabling device after reset failure: -?\d+"),
          "a reset failed and the driver disabled the controller for good (nvme_reset_work; "
          "6.12's wording of the removal above)",
          ("6.12",), give_up=True),
    Alarm("alarm-not-marked-live",
          re.compile(r"nvme\d+: failed to mark controller live state"),
          "a reset brought the controller up but its state could no longer become live, so "
          "the driver gave it up (nvme_reset_work, 6.12's nvme_probe too)",
          ("5.10", "6.1", "6.12"), give_up=True),
    Alarm("alarm-not-marked-connecting",
          re.compile(r"nvme\d+: failed to mark controller CONNECTING"),
          "a reset could not move the controller to connecting and gave it up "
          "(nvme_reset_work)",
          ("5.10", "6.1", "6.12"), give_up=True),
    Alarm("alarm-reset-not-resetting",
          re.compile(r"nvme\d+: ctrl state \d+ is not RESETTING"),
          "a reset ran on a controller no longer resetting and gave it up (nvme_reset_work)",
          ("5.10", "6.1", "6.12"), give_up=True),
    Alarm("alarm-io-queues-lost",
          re.compile(r"nvme\d+: IO queues (?:not created|lost)"),
          "the controller came back with its admin queue only: the driver dropped its "
          "namespaces (nvme_reset_work; 'lost' is 6.12's wording after a reset)",
          ("5.10", "6.1", "6.12"), give_up=True),
)
# Left out on purpose: "I/O N QID M timeout, completion polled" (a lost interrupt, but also a
# completion racing its timeout; no run of this suite has shown it yet) and the timeouts,
# aborts and resets a recovery prints (judged by the scenarios, not by their words).

_ALARM_CODES: Final = {a.code: a for a in ALARMS}
# The driver giving a controller up after a failed reset, in each kernel's words: what a
# scenario whose fault may legitimately end that way declares (and nothing more)
CONTROLLER_GIVEN_UP: Final = ("alarm-removed-after-probe-failure",
                              "alarm-disabled-after-reset-failure")


@dataclass(frozen=True)
class AlarmReport:
    """Every line of one alarm in a log: the first says what happened, the count how often."""

    alarm: Alarm
    lines: tuple[str, ...]  # as printed, time stamps kept
    before: tuple[str, ...] = ()  # the driver's lines that led up to the first one

    @property
    def message(self) -> str:
        more = f" ({len(self.lines)} times)" if len(self.lines) > 1 else ""
        return f"{strip_prefix(self.lines[0])}{more}: {self.alarm.meaning}"

    @property
    def evidence(self) -> str:
        lead = ["the driver's lines before it:", *self.before, "the alarm:"] if self.before \
            else []
        return "\n".join([*lead, *self.lines[:20]])


ALARM_LEAD_LINES = 12
DRIVER_LINE = re.compile(r"\bnvme\S*:|I/O error, dev nvme")


def find_alarms(text: str, accepted: Iterable[str] = ()) -> list[AlarmReport]:
    """The driver's alarms in a kernel log, one report per code in order of first line;
    codes in ``accepted`` (give-ups a scenario declared) are left out."""
    skip = frozenset(accepted)
    found: dict[str, list[str]] = {}
    before: dict[str, tuple[str, ...]] = {}
    driver: list[str] = []  # its latest lines: what led up to an alarm
    for raw in re.split(r"[\r\n]+", text):
        line = strip_prefix(raw)
        for alarm in ALARMS:
            if alarm.code not in skip and alarm.pattern.search(line):
                if alarm.code not in found:
                    before[alarm.code] = tuple(driver[-ALARM_LEAD_LINES:])
                found.setdefault(alarm.code, []).append(raw.strip())
                break
        if DRIVER_LINE.search(line):
            driver.append(raw.strip())
    return [AlarmReport(_ALARM_CODES[code], tuple(lines), before[code])
            for code, lines in found.items()]


_Procedure = TypeVar("_Procedure", bound=Callable[..., object])


def accepts_give_up(*codes: str) -> Callable[[_Procedure], _Procedure]:
    """Declare, on a scenario's procedure, the give-ups that are an accepted outcome of it
    (a device made to go silent may be given up); impossible states cannot be accepted."""
    for code in codes:
        alarm = _ALARM_CODES.get(code)
        if alarm is None or not alarm.give_up:
            raise ValueError(f"{code!r} is not a give-up alarm of the table")

    def declare(procedure: _Procedure) -> _Procedure:
        procedure.__dict__["accepted_alarms"] = frozenset(codes)
        return procedure
    return declare


def accepted_alarms(procedure: Callable[..., object]) -> frozenset[str]:
    """The give-ups ``procedure`` declared with :func:`accepts_give_up` (none by default)."""
    return frozenset(getattr(procedure, "accepted_alarms", ()))
