"""Kernel oops detection: find oopses, WARNINGs, lockups and panics in guest console output.

The harness streams the guest's serial console (or ``dmesg`` output) through an
:class:`OopsDetector`.  Every kernel problem report becomes an :class:`Oops` carrying a short
syzkaller-style title (``"WARNING in nvme_reset_work"``), so a failed test names the bug in one
line and repeats of the same bug fold into one entry.  Only report *headers* printed by the
kernel's own bug machinery start a report, so the noisy-but-healthy messages of an NVMe
reset-under-load test (I/O timeouts, aborts, I/O errors) never count.

The headers are a table, :data:`FORMATS` (after syzkaller's pkg/report): one
:class:`OopsFormat` per kind of report says how its first line looks, how its title is made
and how the report ends.  The first entry whose header matches a line wins.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "FORMATS",
    "IDLE_LINE_LIMIT",
    "MAX_REPORT_LINES",
    "Oops",
    "OopsDetector",
    "OopsFormat",
    "OopsKind",
    "dedupe",
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


# --------------------------------------------------------------------------- title pieces


def _same(text: str) -> str:
    return text


def _squash(text: str) -> str:
    return " ".join(text.split())


def _sentence(text: str) -> str:
    """``possible recursive locking detected!`` -> ``possible recursive locking detected``."""
    return _squash(text).rstrip("!.")


_BUG_DESC_CUT_RE: Final = re.compile(r" for address| at | in process| on CPU#| - |[,:!]")


def _bug_desc(rest: str) -> str:
    """``kernel NULL pointer dereference, address: 0000`` -> ``kernel NULL pointer dereference``."""
    cut = _BUG_DESC_CUT_RE.search(rest)
    desc = rest[: cut.start()] if cut else rest
    return _squash(re.sub(r"\s*\[[^\]]*\]", "", desc)).rstrip(".")


def _die_desc(desc: str) -> str:
    """``general protection fault, probably for ...`` -> ``general protection fault``."""
    return desc.split(",", 1)[0].strip()


def _strip_offsets(text: str) -> str:
    """``foo+0x1/0x2 [mod] / bar+0x3/0x4`` -> ``foo / bar``."""
    text = re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+(?:\s*\[[^\]]*\])?", "", text)
    return _squash(re.sub(_FUNC, lambda m: _clean_func(m["func"]), text))


_FILE_LINE_RE: Final = re.compile(r"[\w./-]+\.[chS]:\d+")


@functools.cache
def _fields(template: str) -> frozenset[str]:
    """The names a title template fills in."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


# --------------------------------------------------------------------------- the formats

Blame = Literal["trace", "header", "header-unless-generic"]
"""Which function ``{frame}`` names: the trace's first meaningful one (``trace``); the one in
the header's ``where`` group, else the trace's (``header``); the header's unless it is a
generic helper (``kfree``), when the trace's is better (``header-unless-generic``)."""

Ending = Literal["alone", "marker", "rule", "trace"]
"""What ends a report: nothing, its header is all of it (``alone``: a panic, after which
nothing is reliable); an ``---[ end trace`` line (``marker``); a ``=====`` rule or such a line
(``rule``); the end of its call trace, or an end marker once a die() line joined (``trace``).
"""

_COMPUTED_FIELDS: Final = frozenset({"frame", "file_line"})


@dataclass(frozen=True)
class OopsFormat:
    """One kind of kernel report: how its first line looks, how it is titled, how it ends.

    ``titles`` are ``str.format`` templates tried in order: the first whose fields are all
    known makes the title, and the last one is the fallback. Their fields are the header's
    named groups (an optional group that did not match is unknown), passed through ``clean``;
    ``frame``, the function the report blames (see :data:`Blame`; unknown when no frame
    qualifies); and ``file_line``, the header's first ``file.c:123``.
    """

    kind: OopsKind
    header: re.Pattern[str]  # matched at the start of a prefix-stripped, left-stripped line
    titles: tuple[str, ...]
    clean: Mapping[str, Callable[[str], str]] = dataclasses.field(default_factory=dict)
    blame: Blame = "trace"
    ending: Ending = "trace"
    fatal: bool = False
    die: bool = False  # the header is a die() line: "Oops: 0000 [#1] ...", "invalid opcode: ..."
    # The header is followed by its own die() line, which belongs to this report rather than
    # starting one.
    die_follows: bool = False

    def __post_init__(self) -> None:
        groups = set(self.header.groupindex)
        unknown = set().union(*map(_fields, self.titles)) - groups - _COMPUTED_FIELDS
        if not self.titles or unknown or not set(self.clean) <= groups:
            raise ValueError(f"{self.header.pattern!r}: titles or clean name unknown groups")
        if self.blame != "trace" and "where" not in groups:
            raise ValueError(f"{self.header.pattern!r}: blaming the header needs 'where'")

    def title(self, header: re.Match[str], lines: Sequence[str]) -> str:
        """The title of the report ``lines`` whose first line matched as ``header``."""
        values: dict[str, str | None] = {
            name: None if text is None else self.clean.get(name, _same)(text)
            for name, text in header.groupdict().items()
        }
        values["frame"] = self._blamed(header, lines)
        values["file_line"] = m[0] if (m := _FILE_LINE_RE.search(header.string)) else None
        for template in self.titles:
            if all(values[name] is not None for name in _fields(template)):
                return template.format_map(values)
        return self.titles[-1].format_map(values)

    def _blamed(self, header: re.Match[str], lines: Sequence[str]) -> str | None:
        if self.blame == "trace":
            return _first_frame(lines)
        hit = _FUNC_OFF_RE.search(header["where"] or "")
        named = _clean_func(hit["func"]) if hit else None
        if self.blame == "header":
            return named or _first_frame(lines)
        if named is not None and not _SKIP_FRAME_RE.fullmatch(named):
            return named
        return _first_frame(lines) or named


def _die_header(desc: str | None) -> re.Pattern[str]:
    """A die() line ("Oops: 0000 [#1] ...", "invalid opcode: 0000 [#1] ..."); with ``desc``,
    one naming a trap of that description, without it one naming none."""
    prefixes = r"^(?:Internal error: |Oops(?: - [\w ]+)?: )"
    if desc is None:
        return re.compile(prefixes + r"+:? ?[0-9a-f]+ \[#\d+\]")
    return re.compile(prefixes + rf"*(?P<desc>(?:{desc})[^:]*?):? ?[0-9a-f]+ \[#\d+\]")


# Order matters: the first match wins, so the specific headers come before the general ones
# they would also match (KASAN before the other BUG:s, lockdep's WARNINGs after the WARN()s).
FORMATS: Final[tuple[OopsFormat, ...]] = (
    OopsFormat("panic", re.compile(r"^Kernel panic - not syncing:\s*(?P<reason>.+)?$"),
               ("kernel panic: {reason}", "kernel panic"), clean={"reason": _squash},
               ending="alone", fatal=True),
    OopsFormat("kasan", re.compile(r"^BUG: KASAN: (?P<what>\S+)(?: in (?P<where>.*))?$"),
               ("KASAN: {what} in {frame}", "KASAN: {what}"),
               blame="header-unless-generic", ending="rule"),
    # a KASAN header that names no bug type is KASAN's all the same
    OopsFormat("kasan", re.compile(r"^BUG: KASAN:"), ("KASAN: bug in {frame}", "KASAN: bug"),
               ending="rule"),
    OopsFormat("soft_lockup", re.compile(r"^(?:(?:NMI )?watchdog: )?BUG: soft lockup\b"),
               ("BUG: soft lockup in {frame}", "BUG: soft lockup")),
    # KCSAN, KMSAN, KFENCE: the header names the functions
    OopsFormat("bug", re.compile(r"^BUG: (?P<tool>K[A-Z]+SAN|KFENCE): (?P<what>.*)$"),
               ("{tool}: {what}",), clean={"what": _strip_offsets}, die_follows=True),
    # x86's page faults; every other BUG: is a "bug"
    OopsFormat("oops",
               re.compile(r"^BUG: (?P<desc>(?:unable to handle|kernel NULL pointer dereference)"
                          r".*)$"),
               ("BUG: {desc} in {frame}", "BUG: {desc}"), clean={"desc": _bug_desc},
               die_follows=True),
    OopsFormat("bug", re.compile(r"^BUG: (?P<desc>.+)$"),
               ("BUG: {desc} in {frame}", "BUG: {desc}"), clean={"desc": _bug_desc},
               die_follows=True),
    OopsFormat("bug", re.compile(r"^kernel BUG at (?P<where>[^!\s]+)"),
               ("kernel BUG in {frame}", "kernel BUG at {where}"), die_follows=True),
    OopsFormat("gpf", _die_header("general protection fault"),
               ("{desc} in {frame}", "{desc}"), clean={"desc": _die_desc},
               ending="marker", die=True),
    OopsFormat("oops", _die_header("invalid opcode|stack segment|double fault|divide error"
                                   "|int3|alignment check|segment not present|invalid TSS"),
               ("{desc} in {frame}", "{desc}"), clean={"desc": _die_desc},
               ending="marker", die=True),
    OopsFormat("oops", _die_header(None), ("Oops in {frame}", "Oops"),
               ending="marker", die=True),
    OopsFormat("warning",
               re.compile(r"^WARNING: (?:CPU: \d+ PID: \d+ at |at |\S+:\d+ at )(?P<where>.*)$"),
               ("WARNING in {frame}", "WARNING at {file_line}", "WARNING"),
               blame="header", ending="marker"),
    OopsFormat("lockdep",
               re.compile(r"^WARNING: (?P<what>.*\b(?:(?:un)?lock(?:s|ing)?|RCU|contention)\b"
                          r".*)$"),
               ("{what}",), clean={"what": _sentence}),
    OopsFormat("lockdep", re.compile(r"^\[ INFO: (?P<what>.+?) \]$"),  # older kernels
               ("{what}",), clean={"what": _sentence}),
    OopsFormat("lockdep", re.compile(r"^INFO: (?P<what>trying to register non-static key)"),
               ("{what}",)),
    OopsFormat("hung_task", re.compile(r"^INFO: task .+:\d+ blocked for more than \d+ seconds"),
               ("INFO: task hung in {frame}", "INFO: task hung")),
    OopsFormat("rcu_stall",
               re.compile(r"^(?:rcu: )?INFO: rcu\w* (?:self-)?detected (?:expedited )?stalls? on"),
               ("INFO: rcu detected stall in {frame}", "INFO: rcu detected stall")),
    OopsFormat("hard_lockup",
               re.compile(r"^(?:(?:NMI )?watchdog: )?(?:CPU\d+: )?Watchdog detected hard LOCKUP"
                          r" on cpu \d+"),
               ("BUG: hard lockup in {frame}", "BUG: hard lockup")),
    # the source line, without its column: one bug, one title
    OopsFormat("ubsan", re.compile(r"^UBSAN: (?P<what>.+?) in (?P<where>\S+?:\d+)(?::\d+)?$"),
               ("UBSAN: {what} in {where}",), clean={"what": _squash}, ending="rule"),
    OopsFormat("ubsan", re.compile(r"^UBSAN: (?P<what>.+)$"),
               ("UBSAN: {what}",), clean={"what": _strip_offsets}, ending="rule"),
    # arm64's page faults
    OopsFormat("oops", re.compile(r"^Unable to handle kernel (?P<what>.+?) at virtual address"),
               ("BUG: unable to handle kernel {what} in {frame}",
                "BUG: unable to handle kernel {what}"),
               die_follows=True),
)


@dataclass(frozen=True)
class _Header:
    """A line that starts a report, as one of the :data:`FORMATS` read it."""

    format: OopsFormat
    match: re.Match[str]


def _recognise(head: str) -> _Header | None:
    """How ``head`` (a prefix-stripped, left-stripped line) starts a report, if it does."""
    for form in FORMATS:
        found = form.header.match(head)
        if found is not None:
            return _Header(form, found)
    return None


# --------------------------------------------------------------------------- the detector


@dataclass
class _Pending:
    """A report whose end has not been seen yet."""

    header: _Header
    lines: list[str]
    die_seen: bool = False
    in_trace: bool = False
    idle: int = 0  # consecutive lines that did not look like report content

    @property
    def expects_marker(self) -> bool:
        """Whether an explicit end line follows the trace ("---[ end trace" or "=====")."""
        return self.die_seen or self.header.format.ending != "trace"

    def absorbs_die(self) -> bool:
        """A BUG:/kernel BUG header is followed by its own die() line: same report."""
        return self.header.format.die_follows and not self.die_seen and not self.in_trace


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
        header = _recognise(head)
        out: list[Oops] = []
        rep = self._pending
        if rep is not None:
            if _END_MARKER_RE.match(head):
                rep.lines.append(line)
                return self._finish()
            if header is None:
                return self._continue(rep, line, head)
            if header.format.die and rep.absorbs_die():
                rep.die_seen = True
                return self._append(rep, line, trace_like=True)
            out = self._finish()
        if header is None:
            return out  # not part of any report
        if header.format.ending == "alone":
            oops = self._report(header, (line,))
            self.found.append(oops)
            return [*out, oops]
        self._pending = _Pending(header, [line])
        return out

    def _continue(self, rep: _Pending, line: str, head: str) -> list[Oops]:
        if _BOUNDARY_RE.match(head):
            if rep.header.format.ending == "rule" and head.startswith("="):
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
        oops = self._report(rep.header, tuple(rep.lines[: self.max_lines]))
        self.found.append(oops)
        return [oops]

    @staticmethod
    def _report(header: _Header, lines: tuple[str, ...]) -> Oops:
        form = header.format
        return Oops(form.kind, form.title(header.match, lines), lines, fatal=form.fatal)


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
