"""Kernel log reading: oopses, the driver's own alarms, recoveries that did not hold.

The oops detector lives in :mod:`harness.reading.oops` and is re-exported here, where the
rest of the harness has always found it. This module adds what the scenarios read in
``dmesg`` output besides oopses: time-stamp windows, I/O timeouts, requeues traced by ftrace,
the instability after a recovery, and the table of lines the NVMe driver prints for an
impossible state or a controller it gives up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from harness.reading.oops import (
    IDLE_LINE_LIMIT,
    MAX_REPORT_LINES,
    Oops,
    OopsDetector,
    OopsKind,
    dedupe,
    scan,
    strip_prefix,
)

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


def requeued_evidence(requeued: Sequence[Requeue], *evidence: str) -> str:
    """A failure's evidence: the requeued requests' lines, then ``evidence`` (empty parts
    left out)."""
    return "\n".join(filter(None, [*requeued_lines(requeued), *evidence]))


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
DRIVER_LINE = re.compile(r"\bnvme(?!h:)\S*:|I/O error, dev nvme")  # not nvmeh's marks


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
