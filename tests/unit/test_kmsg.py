"""Tests for harness.reading.kmsg's oops detector beyond what a log gives (that is the corpus's,
tests/unit/test_oops_corpus.py): prefix stripping, exact report lines, streaming, bounds and
duplicates."""

from __future__ import annotations

import pytest

from harness.reading.kmsg import (
    IDLE_LINE_LIMIT,
    MAX_REPORT_LINES,
    Oops,
    OopsDetector,
    dedupe,
    scan,
    strip_prefix,
)
from tests.unit.test_oops_corpus import log

# Serial console (ttyS0) output: timestamps, CRLF line endings.
WARNING_CONSOLE = log("warning-reset-work-console-6.1.log")
NULL_DEREF_CONSOLE = log("oops-null-deref-then-panic-console-6.1.log")
GPF_KASAN = log("gpf-kasan-null-ptr-6.1.log")  # bare console: no prefixes
KASAN_DOUBLE_FREE = log("kasan-double-free-6.1.log")
SYSRQ_PANIC = log("panic-sysrq-6.1.log")
HEALTHY = log("none-healthy-reset-under-load-6.1.log")


def _feed_all(text: str) -> list[Oops]:
    det = OopsDetector()
    return det.feed(text) + det.flush()


# --------------------------------------------------------------------------- prefixes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[   12.345678] nvme nvme0: I/O 12 QID 1 timeout", "nvme nvme0: I/O 12 QID 1 timeout"),
        ("[   12.345678]  nvme_reset_work+0x1a/0x40 [nvme]", " nvme_reset_work+0x1a/0x40 [nvme]"),
        (
            "<4>[   12.3] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2",
            "WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2",
        ),
        ("[   12.345678][   T42] Call Trace:", "Call Trace:"),
        ("[   12.345678] [    T42] Call Trace:", "Call Trace:"),
        ("[   12.345678][    C1]  <IRQ>", " <IRQ>"),
        ("[    T42] Oops: 0000 [#1] SMP", "Oops: 0000 [#1] SMP"),
        (
            "<0>Kernel panic - not syncing: Fatal exception\r",
            "Kernel panic - not syncing: Fatal exception",
        ),
        ("kern  :warn  : [   12.345678] RIP: 0010:f+0x1/0x2", "RIP: 0010:f+0x1/0x2"),
        (
            "4,1234,5678901,-;BUG: soft lockup - CPU#0 stuck for 22s!",
            "BUG: soft lockup - CPU#0 stuck for 22s!",
        ),
        ("[Mon Nov 21 18:31:00 2022] INFO: task a:1 blocked", "INFO: task a:1 blocked"),
        (
            "\x1b[0m[   12.3] ---[ end trace 0000000000000000 ]---  ",
            "---[ end trace 0000000000000000 ]---",
        ),
        ("nvme nvme0: Abort status: 0x0", "nvme nvme0: Abort status: 0x0"),
        ("[   12.345678] ", ""),
    ],
)
def test_strip_prefix(raw: str, expected: str) -> None:
    assert strip_prefix(raw) == expected


# --------------------------------------------------------------------------- report extent


def test_warning_report_lines_are_exact() -> None:
    (oops,) = _feed_all(WARNING_CONSOLE)
    expected = [strip_prefix(line) for line in WARNING_CONSOLE.split("\r\n")[1:] if line]
    assert list(oops.lines) == expected
    assert not any("\r" in line for line in oops.lines)


@pytest.mark.parametrize(
    "name",
    [
        "hung_task-reset-work-and-fio-6.1.log",  # each ends at its </TASK>
        "hung_task-scan-work-4.19.log",  # no </TASK>: the first unrelated line ends it
        "warning-then-panic-on-warn-6.1.log",  # the panic closes the WARNING first
    ],
)
def test_reports_are_returned_by_the_feed_that_ends_them(name: str) -> None:
    text = log(name)
    det = OopsDetector()
    assert det.feed(text) == scan(text)
    assert det.flush() == []


# --------------------------------------------------------------------------- panics


def test_sysrq_panic() -> None:
    det = OopsDetector()
    found = det.feed(SYSRQ_PANIC)
    assert found == [
        Oops(
            kind="panic",
            title="kernel panic: sysrq triggered crash",
            lines=("Kernel panic - not syncing: sysrq triggered crash",),
            fatal=True,
        )
    ]
    assert det.panicked
    assert det.flush() == []
    assert det.found == found


def test_panic_returned_by_the_feed_that_completes_its_line() -> None:
    text = SYSRQ_PANIC.replace("\n", "\r\n")
    end = text.index("sysrq triggered crash\r") + len("sysrq triggered crash\r")
    for cut in range(len(text) + 1):
        det = OopsDetector()
        first = det.feed(text[:cut])
        assert det.panicked == (cut >= end), cut
        second = det.feed(text[cut:])
        assert [o.kind for o in first + second] == ["panic"], cut


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("text", [WARNING_CONSOLE, KASAN_DOUBLE_FREE, NULL_DEREF_CONSOLE])
def test_every_split_point_gives_the_same_reports(text: str) -> None:
    expected = _feed_all(text)
    assert expected
    for cut in range(len(text) + 1):
        det = OopsDetector()
        got = det.feed(text[:cut]) + det.feed(text[cut:]) + det.flush()
        assert got == expected, cut
        assert det.found == expected


def test_char_by_char_and_report_returned_at_end_marker() -> None:
    det = OopsDetector()
    end = WARNING_CONSOLE.index("]---\r\n") + len("]---\r")
    for i, ch in enumerate(WARNING_CONSOLE):
        got = det.feed(ch)
        if i + 1 == end:
            assert [o.title for o in got] == ["WARNING in nvme_reset_work"]
        else:
            assert got == [], i
    assert det.flush() == []
    assert len(det.found) == 1


def test_pending_report_needs_flush_at_end_of_stream() -> None:
    truncated = WARNING_CONSOLE[: WARNING_CONSOLE.index("[   42.143829]")]
    det = OopsDetector()
    assert det.feed(truncated) == []
    (oops,) = det.flush()
    assert oops.title == "WARNING in nvme_reset_work"
    assert oops.lines[-1].startswith("softirqs last disabled at")


def test_unterminated_last_line_is_processed_by_flush() -> None:
    det = OopsDetector()
    assert det.feed("[  1.0] Kernel panic - not syncing: VFS: Unable to mount root fs") == []
    (oops,) = det.flush()
    assert oops.title == "kernel panic: VFS: Unable to mount root fs"


def test_report_bounded_in_length() -> None:
    header = "WARNING: CPU: 0 PID: 1 at drivers/nvme/host/core.c:1 nvme_foo+0x1/0x2 [nvme_core]\n"
    det = OopsDetector()
    got = det.feed(header + "Call Trace:\n" + " nvme_bar+0x1/0x2 [nvme]\n" * 500)
    assert len(got) == 1
    assert len(got[0].lines) == MAX_REPORT_LINES
    assert det.flush() == []


def test_report_ends_after_idle_lines_without_them() -> None:
    header = "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!"
    noise = [f"nvme nvme0: I/O {i} QID 1 timeout, aborting" for i in range(IDLE_LINE_LIMIT + 5)]
    det = OopsDetector()
    got = det.feed("\n".join([header, *noise]) + "\n")
    assert [(o.title, o.lines) for o in got] == [("BUG: workqueue lockup", (header,))]


@pytest.mark.parametrize(
    "prefix",
    ["[{t}] ", "<4>[{t}] ", "[{t}][    T96] ", "[{t}] [    C1] ", "kern  :warn  : [{t}] "],
)
def test_prefix_styles_give_identical_reports(prefix: str) -> None:
    lines = GPF_KASAN.splitlines()
    text = "".join(
        prefix.format(t=f"{i:5d}.{i * 1031 % 999999:06d}") + line + "\r\n"
        for i, line in enumerate(lines)
    )
    assert _feed_all(text) == _feed_all(GPF_KASAN)


# --------------------------------------------------------------------------- duplicates


def test_repeated_warning_reported_once_with_count() -> None:
    other = WARNING_CONSOLE.replace("nvme_reset_work+0x1f5", "nvme_dev_disable+0x1f5")
    text = WARNING_CONSOLE * 3 + other + WARNING_CONSOLE
    det = OopsDetector()
    det.feed(text)
    assert len(det.found) == 5
    found = scan(text)
    assert [(o.title, o.count) for o in found] == [
        ("WARNING in nvme_reset_work", 4),
        ("WARNING in nvme_dev_disable", 1),
    ]
    assert dedupe(found) == found


# --------------------------------------------------------------------------- composed logs


def test_sysrq_line_alone_is_not_a_report_but_its_panic_is() -> None:
    found = scan(HEALTHY + SYSRQ_PANIC)
    assert [(o.kind, o.title) for o in found] == [("panic", "kernel panic: sysrq triggered crash")]


def test_everything_together() -> None:
    names = [
        "none-healthy-reset-under-load-6.1.log",
        "warning-reset-work-console-6.1.log",
        "hung_task-reset-work-and-fio-6.1.log",
        "lockdep-circular-6.1.log",
        "kasan-use-after-free-6.1.log",
        "ubsan-shift-out-of-bounds-6.1.log",
        "soft_lockup-poll-cq-6.1.log",
        "rcu_stall-self-detected-6.1.log",
        "oops-null-deref-then-panic-console-6.1.log",
    ]
    det = OopsDetector()
    for name in names:
        det.feed(log(name))
    det.flush()
    assert [o.kind for o in det.found] == [
        "warning",
        "hung_task",
        "hung_task",
        "lockdep",
        "kasan",
        "ubsan",
        "soft_lockup",
        "rcu_stall",
        "oops",
        "panic",
    ]
    assert det.panicked
