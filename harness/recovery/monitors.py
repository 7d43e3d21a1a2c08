"""What is sampled in the guest while a scenario runs: every controller's state (for the
timeline: its states and when writes resumed) and how busy the guest is (for the throughput
judge)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.guest.guestcpu import GuestCpuMonitor
from harness.guest.nvme import IO_RESUMED, StateMonitor
from harness.guest.ssh import Guest

Event = tuple[str, str, float]  # (kind, detail, guest time) for the timeline


@dataclass
class Monitors:
    # (controller, the namespace whose writes tell I/O resumed: "" for its first)
    controllers: list[tuple[str, str]]
    state_monitor: Callable[[Guest, str, str], StateMonitor] = StateMonitor
    states: list[StateMonitor] = field(default_factory=list)
    guest_cpu: GuestCpuMonitor | None = None  # kept over a power cut: the figures add up

    def start(self, guest: Guest) -> None:
        self.states = [self.state_monitor(guest, name, namespace)
                       for name, namespace in self.controllers]
        for m in self.states:
            m.start()
        if self.guest_cpu is None:
            self.guest_cpu = GuestCpuMonitor(guest)
        self.guest_cpu.guest = guest  # a new one after a power cut
        self.guest_cpu.start()

    def stop(self) -> list[Event]:
        """Stop sampling; what the controllers' monitors saw, as timeline events."""
        if self.guest_cpu is not None:
            self.guest_cpu.stop()
        events: list[Event] = []
        for m in self.states:
            for sample in m.stop():
                if sample.state == IO_RESUMED:
                    events.append(("io_resumed", m.controller, sample.at))
                else:
                    events.append(("state", f"{m.controller} {sample.state}", sample.at))
        self.states = []
        return events
