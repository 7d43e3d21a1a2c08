"""The oops detector against a corpus of raw kernel logs, tests/unit/data/oops/*.log.

A file starts with what its log must give, one block per report in the order found, then a
blank line, then the log exactly as the kernel printed it (console or dmesg, CRLF kept):

    # why the log is here
    TITLE: WARNING in nvme_reset_work        a report's title ("TITLE: none": no report)
    KIND: warning                            its kind
    START: WARNING: CPU: 1 PID: 53 at ...    its first line, console prefix removed
    END: ---[ end trace 0000000000000000 ]---    its last line
    LINES: 32                                how many lines it has
    COUNT: 2                                 how many times its title occurs (1 unless told)
    HAS: Freed by task 53:                   a line it has (as many as needed)
    LACKS: Showing all locks                 text none of its lines contains (as many)

Every line but TITLE is optional and describes the TITLE above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.reading.oops import OopsDetector, dedupe, scan, strip_prefix

DATA = Path(__file__).parent / "data" / "oops"
LOGS = sorted(DATA.glob("*.log"))


@dataclass
class Expected:
    """What one report of a corpus log must be."""

    title: str
    kind: str | None = None
    start: str | None = None
    end: str | None = None
    lines: int | None = None
    count: int = 1
    has: list[str] = field(default_factory=list)
    lacks: list[str] = field(default_factory=list)


def read(path: Path) -> tuple[list[Expected], str]:
    """The reports a corpus file expects, and its log."""
    text = path.read_bytes().decode()  # not read_text: the console's \r\n must stay
    head, _, log = text.partition("\n\n")
    expected: list[Expected] = []
    for line in head.splitlines():
        key, sep, value = line.partition(": ")
        if line.startswith("#"):
            continue
        assert sep, f"{path.name}: {line!r} is not 'KEY: value'"
        if key == "TITLE":
            expected.append(Expected(value))
            continue
        assert expected, f"{path.name}: {key} before any TITLE"
        want = expected[-1]
        if key in ("HAS", "LACKS"):
            getattr(want, key.lower()).append(value)
        elif key == "LINES":
            want.lines = int(value)
        elif key == "COUNT":
            want.count = int(value)
        elif key in ("KIND", "START", "END"):
            setattr(want, key.lower(), value)
        else:
            raise AssertionError(f"{path.name}: unknown key {key!r}")
    if [e.title for e in expected] == ["none"]:
        return [], log
    assert expected, f"{path.name}: no TITLE"
    return expected, log


def log(name: str) -> str:
    """The log of the corpus file ``name``, without its expectations."""
    return read(DATA / name)[1]


def test_the_corpus_is_there() -> None:
    assert len(LOGS) >= 45


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.name)
def test_scan_gives_the_expected_reports(path: Path) -> None:
    expected, text = read(path)
    found = scan(text)
    assert [o.title for o in found] == [e.title for e in expected]
    for oops, want in zip(found, expected, strict=True):
        assert oops.header == oops.lines[0]
        assert strip_prefix(oops.header) == oops.header.lstrip(), "console prefix left in place"
        assert oops.fatal == (oops.kind == "panic")
        assert oops.count == want.count
        if want.kind is not None:
            assert oops.kind == want.kind
        if want.start is not None:
            assert oops.lines[0] == want.start
        if want.end is not None:
            assert oops.lines[-1] == want.end
        if want.lines is not None:
            assert len(oops.lines) == want.lines
        for line in want.has:
            assert line in oops.lines
        for text_ in want.lacks:
            assert not any(text_ in line for line in oops.lines), text_


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.name)
def test_line_by_line_and_crlf_give_the_same_reports(path: Path) -> None:
    _, text = read(path)
    detector = OopsDetector()
    for line in text.splitlines(keepends=True):
        detector.feed(line)
    detector.flush()
    assert dedupe(detector.found) == scan(text)
    assert scan(text.replace("\n", "\r\n")) == scan(text)  # serial consoles end lines so
