"""The guest kernel's own fault injection (debugfs), for kernels built with it.

Guest-side, so it works the same on a physical machine with a real drive: the NVMe driver's
``fault_inject`` makes it complete chosen commands with an NVMe status of our choosing, and
the block layer's ``fail_io_timeout`` drops chosen completions so that requests time out.
Debian's kernels have neither (no CONFIG_FAULT_INJECTION); ``kernel build`` makes one that does.
"""

from __future__ import annotations

from types import TracebackType

from harness.errors import HarnessError
from harness.ssh import Guest

DEBUGFS = "/sys/kernel/debug"
# NVMe status codes (Status Code Type << 8 | Status Code)
SC_DATA_XFER_ERROR = 0x004  # generic: transient, the driver retries it
SC_INTERNAL = 0x006  # generic: internal error
SC_UNWRITTEN_BLOCK = 0x287  # media: reported as a medium error


class InjectionUnavailable(HarnessError):
    """The guest kernel lacks the fault injection a step needs."""


class _Attrs:
    def __init__(self, guest: Guest, directory: str) -> None:
        self.guest = guest
        self.dir = directory

    def available(self) -> bool:
        return self.guest.run(f"[ -d {self.dir} ]").ok

    def require(self) -> None:
        if not self.available():
            raise InjectionUnavailable(f"{self.dir} is missing: the guest kernel has no "
                                       "CONFIG_FAULT_INJECTION_DEBUG_FS")

    def write(self, **attrs: int) -> None:
        self.guest.run("; ".join(f"echo {value} > {self.dir}/{name}"
                                 for name, value in attrs.items()), check=True)


class StatusInjection(_Attrs):
    """NVMe fault_inject of a namespace (``nvme0n1``: its I/O) or a controller (``nvme0``:
    its admin commands): completes commands with ``status`` instead of the device's answer.

    ``times`` commands fail (-1: no limit), each with ``probability`` percent; ``retry`` lets
    the driver retry them (no DNR bit)."""

    def __init__(self, guest: Guest, target: str, status: int, probability: int = 100,
                 times: int = 1, retry: bool = False) -> None:
        super().__init__(guest, f"{DEBUGFS}/{target}/fault_inject")
        self.target = target
        self.settings = {"status": status, "probability": probability, "times": times,
                         "dont_retry": 0 if retry else 1, "verbose": 1, "interval": 1}

    def __enter__(self) -> StatusInjection:
        self.require()
        # Disarmed first: ``times`` starts at 1, so writing ``probability`` would arm the
        # injection with the settings not yet written (the default status carries DNR, and
        # one I/O failed for good that way). ``times`` last: it arms it.
        self.write(times=0)
        self.write(**{k: v for k, v in self.settings.items() if k != "times"})
        self.write(times=self.settings["times"])
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.available():  # a removed controller took its directory with it
            self.write(times=0, probability=0)


class TimeoutInjection(_Attrs):
    """fail_io_timeout on one disk: ``times`` of its requests (each with ``probability``
    percent) have their completion ignored, so they time out and the driver's timeout
    handler, abort and reset paths run against a device that did answer."""

    def __init__(self, guest: Guest, disk: str, probability: int = 100, times: int = 1) -> None:
        super().__init__(guest, f"{DEBUGFS}/fail_io_timeout")
        self.disk = disk
        self.settings = {"probability": probability, "interval": 1, "verbose": 1}
        self.times = times

    def __enter__(self) -> TimeoutInjection:
        self.require()
        self.write(times=0)  # disarmed until every setting is in (see StatusInjection)
        self.write(**self.settings)
        self.guest.run(f"echo 1 > /sys/block/{self.disk}/io-timeout-fail", check=True)
        self.write(times=self.times)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.write(times=0, probability=0)
        self.guest.run(f"echo 0 > /sys/block/{self.disk}/io-timeout-fail 2>/dev/null")
