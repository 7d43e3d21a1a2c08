"""The guest's clock as the host estimates it, against a guest whose clock runs ahead."""

from __future__ import annotations

from harness.guest.guestclock import GuestClock


class FakeHost:
    """A host clock that advances only when told, and a guest clock ``ahead`` of it whose
    reading takes ``latencies`` seconds there and back (in turn)."""

    def __init__(self, ahead: float, latencies: list[float]) -> None:
        self.t, self.ahead, self.latencies = 1000.0, ahead, list(latencies)

    def host(self) -> float:
        return self.t

    def read_guest(self) -> float:
        latency = self.latencies.pop(0) if self.latencies else 0.002
        self.t += latency / 4  # the guest answers early in the round trip
        reading = self.t + self.ahead
        self.t += latency * 3 / 4
        return reading


def test_the_fastest_round_trip_sets_the_offset() -> None:
    fake = FakeHost(ahead=42.0, latencies=[0.5, 0.004, 0.2])
    clock = GuestClock(fake.read_guest, fake.host)
    # the 4 ms trip errs by a quarter of it against its midpoint; the 0.5 s one would by 0.125 s
    assert abs(clock.offset - 42.0) <= 0.0011
    assert abs(clock.now() - (fake.t + 42.0)) <= 0.0011


def test_resync_follows_a_clock_that_stood_still() -> None:
    fake = FakeHost(ahead=5.0, latencies=[0.002] * 3)
    clock = GuestClock(fake.read_guest, fake.host)
    fake.ahead -= 7.5  # the VM was stopped for 7.5 s: its clock is that much behind now
    assert abs(clock.now() - (fake.t + 5.0)) < 0.01  # stale until measured again
    clock.resync()
    assert abs(clock.now() - (fake.t - 2.5)) < 0.01
