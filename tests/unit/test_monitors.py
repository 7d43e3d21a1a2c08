"""The guest's monitors, with state samplers made by hand: one per controller, and what they
saw becomes timeline events (a state change, or writes resumed)."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.guest.nvme import IO_RESUMED, StateSample
from harness.recovery.monitors import Monitors


class FakeStates:
    started: ClassVar[list[str]] = []

    def __init__(self, guest: Any, controller: str, namespace: str) -> None:
        self.controller, self.namespace = controller, namespace

    def start(self) -> None:
        FakeStates.started.append(f"{self.controller}:{self.namespace}")

    def stop(self) -> list[StateSample]:
        return [StateSample(1.0, "live"), StateSample(2.0, "resetting"),
                StateSample(2.1, "live"), StateSample(2.3, IO_RESUMED)]


class FakeCpu:
    def __init__(self) -> None:
        self.guest, self.runs = None, 0

    def start(self) -> None:
        self.runs += 1

    def stop(self) -> None:
        pass


def test_one_sampler_per_controller_and_their_samples_as_events() -> None:
    FakeStates.started = []
    m = Monitors([("nvme0", ""), ("nvme3", "nvme3n2")], FakeStates,
                 guest_cpu=FakeCpu())  # type: ignore[arg-type]
    m.start("guest")  # type: ignore[arg-type]
    assert FakeStates.started == ["nvme0:", "nvme3:nvme3n2"]
    events = m.stop()
    assert events[:4] == [("state", "nvme0 live", 1.0), ("state", "nvme0 resetting", 2.0),
                          ("state", "nvme0 live", 2.1), ("io_resumed", "nvme0", 2.3)]
    assert len(events) == 8 and m.stop() == []


def test_the_guest_cpu_monitor_is_kept_over_a_power_cut() -> None:
    cpu = FakeCpu()
    m = Monitors([("nvme0", "")], FakeStates, guest_cpu=cpu)  # type: ignore[arg-type]
    m.start("first life")  # type: ignore[arg-type]
    m.stop()
    m.start("second life")  # type: ignore[arg-type]
    assert m.guest_cpu is cpu and cpu.guest == "second life" and cpu.runs == 2
