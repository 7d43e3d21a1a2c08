"""What happened when, in one scenario iteration: faults, state changes, recovery, I/O.

Times are seconds of the epoch as the guest's clock saw them (the harness sets that clock
from the host's at every start), so guest-side samples and host-side actions line up.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

# A reset's requeues may be logged before the state monitor (a 10 ms sampler, slower
# under load) saw the controller leave live
REQUEUE_BEFORE_LEAVING_S = 0.5


REQUEUE_BURST = re.compile(r"(\d+) request\(s\) by a reset\b")  # a "requeued" event's


def requeue_burst(count: int, uptime: float) -> str:
    """The detail of a ``requeued`` event for one burst, as :data:`REQUEUE_BURST` reads it."""
    return f"{count} request(s) by a reset ({uptime:.1f}s kernel uptime)"


class Stall(NamedTuple):
    what: str  # "reset": out of live too long; "resume": no write after live for too long
    message: str
    requeued: int = 0  # of a reset: the requests requeued while it ran (any namespace)


@dataclass(frozen=True)
class Event:
    at: float
    kind: str  # load_started, fault, state, recovered, io_resumed, verify, ...
    detail: str = ""


@dataclass
class Timeline:
    events: list[Event] = field(default_factory=list)
    # per-second IOPS of each load: (end of the window, IOPS), for the throughput verdicts
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # mean write latency of each load per second, in ms: (end of the window, ms)
    latency: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, kind: str, detail: str = "", at: float | None = None) -> Event:
        event = Event(time.time() if at is None else at, kind, detail)
        self.events.append(event)
        return event

    def sorted(self) -> list[Event]:
        return sorted(self.events, key=lambda e: e.at)

    def io_resume_times(self) -> list[float]:
        """Seconds from each return of a controller to ``live`` (after having left it) to
        the first write completed on it afterwards, as the state monitor saw them."""
        times: list[float] = []
        back: dict[str, float] = {}  # controller -> when it was live again
        state: dict[str, str] = {}
        for ev in self.sorted():
            if ev.kind == "state":
                ctrl, _, now = ev.detail.rpartition(" ")
                if now == "live" and state.get(ctrl, "live") != "live":
                    back[ctrl] = ev.at
                state[ctrl] = now
            elif ev.kind == "io_resumed" and ev.detail in back:
                times.append(ev.at - back.pop(ev.detail))
        return times

    def times(self, kind: str, since: float, until: float = math.inf) -> list[float]:
        """When the ``kind`` events happened between ``since`` and ``until``."""
        return sorted(e.at for e in self.events if e.kind == kind and since <= e.at <= until)

    def recovery_times(self) -> list[float]:
        """Seconds from each fault, or from its lifting where it was lifted (the device could
        not recover before), to its recovery.

        The recovery is the ``recovered`` event that closes the fault, or, when earlier, the
        moment the state monitor saw a controller go back to ``live`` after the fault had
        taken it out of ``live`` (the harness notices recovery later than it happens).
        """
        times: list[float] = []
        fault: float | None = None
        back: float | None = None  # the monitor's return to live after this fault
        left_live = False
        for ev in self.sorted():
            if ev.kind == "fault":
                fault, back, left_live = ev.at, None, False
            elif fault is None:
                continue
            elif ev.kind == "lifted":  # still away: the controller may have left live already
                fault, back = ev.at, None
            elif ev.kind == "state":
                live = ev.detail.endswith(" live")
                if not live:
                    left_live = True
                elif left_live and back is None:
                    back = ev.at
            elif ev.kind == "recovered":
                times.append(min(ev.at, back if back is not None else ev.at) - fault)
                fault = None
        return times

    def writing_spans(self) -> dict[str, list[tuple[float, float]]]:
        """Controller -> the first and last second each of its loads wrote, for the loads on
        a controller's own first namespace (``/dev/nvmeXn1``) that started and finished (a
        soak runs one after another)."""
        started: dict[str, tuple[str, float]] = {}  # load -> (controller, when it wrote)
        writing: dict[str, list[tuple[float, float]]] = {}
        for ev in self.sorted():
            name, _, rest = ev.detail.partition(" ")
            if ev.kind == "load_started" and (m := re.fullmatch(r"/dev/(nvme\d+)n1", rest)):
                started[name] = (m.group(1), ev.at)
            elif ev.kind == "load_finished" and name.rstrip(":") in started:
                ctrl, first = started.pop(name.rstrip(":"))
                writing.setdefault(ctrl, []).append((first, ev.at))
        return writing

    def asleep_spans(self) -> list[tuple[float, float]]:
        """When the whole machine slept (a suspend): each ``asleep`` to its ``awake``."""
        spans, began = [], None
        for ev in self.sorted():
            if ev.kind == "asleep":
                began = ev.at
            elif ev.kind == "awake" and began is not None:
                spans.append((began, ev.at))
                began = None
        return spans

    def requeue_bursts(self) -> list[tuple[float, int]]:
        """(when, how many) of each reset's requeues, where recorded at their time."""
        return [(ev.at, int(m.group(1))) for ev in self.events if ev.kind == "requeued"
                and (m := REQUEUE_BURST.match(ev.detail)) is not None]

    def requeued_by_reset_before(self, at: float) -> int:
        """The requests requeued by the last reset begun before ``at`` (what a failure at
        ``at`` may have come through): from when a controller last left live before ``at``
        until one next leaves it (the clocks of the requeues and of ``at`` may disagree by
        some milliseconds)."""
        lefts: list[float] = []
        state: dict[str, str] = {}
        for ev in self.sorted():
            if ev.kind == "state":
                ctrl, _, now = ev.detail.rpartition(" ")
                if now != "live" and state.get(ctrl, "live") == "live":
                    lefts.append(ev.at)
                state[ctrl] = now
        before = [t for t in lefts if t <= at]
        if not before:
            return 0
        begin = before[-1] - REQUEUE_BEFORE_LEAVING_S
        end = min((t for t in lefts if t > at), default=math.inf) - REQUEUE_BEFORE_LEAVING_S
        return sum(n for when, n in self.requeue_bursts() if begin <= when < end)

    def stalls(self, reset_bound: float | None, resume_bound: float | None,
               loads: dict[str, list[tuple[float, float]]]) -> list[Stall]:
        """What the state monitor saw stall: a controller out of ``live`` for longer than
        ``reset_bound`` seconds, and a return to ``live`` after which no write completed on
        it for ``resume_bound`` seconds while a load was writing to it (``loads``: controller
        -> the first and last second of each load that wrote to it). None: not judged. A
        ``device_silenced`` event (detail: the controller) ends the wait for a write without
        judging it: a device the scenario has silenced completes none, and the driver needs
        its timeout to notice. Time the whole machine slept (``asleep`` to ``awake``) counts
        toward neither bound. A reset's stall counts the requests requeued while it ran
        (``requeued`` events of one burst each, at its time: ``REQUEUE_BURST``)."""
        found: list[Stall] = []
        naps = self.asleep_spans()
        bursts = self.requeue_bursts()

        def awake_for(since: float, until: float) -> float:
            return until - since - sum(max(0.0, min(until, b) - max(since, a)) for a, b in naps)

        state: dict[str, str] = {}
        left: dict[str, float] = {}  # controller -> when it left live
        back: dict[str, float] = {}  # controller -> when it was live again, no write since
        start = self.events[0].at if self.events else 0.0

        def resumed(ctrl: str, at: float) -> None:
            """The wait for a write after ``ctrl``'s return to live ended at ``at``."""
            since = back.pop(ctrl, None)
            if since is None or resume_bound is None or awake_for(since, at) <= resume_bound:
                return
            span = next(((first, last) for first, last in loads.get(ctrl, [])
                         if first <= since <= last - resume_bound), None)
            if span is None:
                return
            last = span[1]
            found.append(Stall("resume", f"no write completed on {ctrl} for "
                          f"{awake_for(since, min(at, last)):.1f}s after it was live again "
                          f"({since - start:.1f}s), while its load was writing: more than "
                          f"{resume_bound:g}s"))

        for ev in self.sorted():
            ctrl, _, now = ev.detail.rpartition(" ")
            if ev.kind == "io_resumed":
                resumed(ev.detail, ev.at)
            elif ev.kind == "device_silenced":
                back.pop(ev.detail, None)
            elif ev.kind == "state" and now != "live" and state.get(ctrl, "live") == "live":
                resumed(ctrl, ev.at)
                left[ctrl] = ev.at
            elif ev.kind == "state" and now == "live" and ctrl in left:
                gone = left.pop(ctrl)
                away = awake_for(gone, ev.at)
                if reset_bound is not None and away > reset_bound:
                    slept = ev.at - gone - away
                    requeued = sum(n for at, n in bursts
                                   if gone - REQUEUE_BEFORE_LEAVING_S <= at <= ev.at)
                    found.append(Stall(
                        "reset", f"{ctrl} was out of live for {away:.1f}s (from "
                        f"{gone - start:.1f}s"
                        + (f"; {slept:.1f}s asleep not counted" if slept else "")
                        + f"): longer than the {reset_bound:g}s a reset may take"
                        + (f"; it requeued {requeued} request(s)" if requeued else ""),
                        requeued))
                back[ctrl] = ev.at
            if ev.kind == "state":
                state[ctrl] = now
        for ctrl in list(back):
            resumed(ctrl, math.inf)
        return found

    def write(self, path: Path) -> None:
        start = self.events[0].at if self.events else 0.0
        path.write_text(json.dumps(
            {"start": start, "recovery_s": self.recovery_times(),
             "io_resume_s": self.io_resume_times(),
             "events": [{**asdict(e), "t": round(e.at - start, 4)} for e in self.sorted()],
             "iops": {name: [[round(t - start, 3), v] for t, v in points]
                      for name, points in self.series.items()},
             "latency_ms": {name: [[round(t - start, 3), round(v, 3)] for t, v in points]
                            for name, points in self.latency.items()}},
            indent=1) + "\n")
