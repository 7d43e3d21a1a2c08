"""What happened when, in one scenario iteration: faults, state changes, recovery, I/O.

Times are seconds of the epoch as the guest's clock saw them (the harness sets that clock
from the host's at every start), so guest-side samples and host-side actions line up.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


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

    def recovery_times(self) -> list[float]:
        """Seconds from each fault to its recovery.

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
