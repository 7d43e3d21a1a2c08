"""The guest kernel's own fault injection (debugfs), for kernels built with it.

Guest-side, so it works the same on a physical machine with a real drive: the NVMe driver's
``fault_inject`` makes it complete chosen commands with an NVMe status of our choosing, and
the block layer's ``fail_io_timeout`` drops chosen completions so that requests time out.
Debian's kernels have neither (no CONFIG_FAULT_INJECTION); ``kernel build`` makes one that does.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.faults import Fault
from harness.faults.guest import stamped
from harness.guest.nvme import Controller
from harness.guest.ssh import Guest

DEBUGFS = "/sys/kernel/debug"
# NVMe status codes (Status Code Type << 8 | Status Code)
SC_DATA_XFER_ERROR = 0x004  # generic: transient, the driver retries it
SC_INTERNAL = 0x006  # generic: internal error
SC_UNWRITTEN_BLOCK = 0x287  # media: reported as a medium error
STATUS_NAMES = {SC_DATA_XFER_ERROR: "Data Transfer Error", SC_INTERNAL: "Internal Error",
                SC_UNWRITTEN_BLOCK: "Unwritten Block"}


class InjectionUnavailable(HarnessError):
    """The guest kernel lacks the fault injection a step needs."""


class _Attrs(Fault):
    side = "guest"

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

    def apply(self) -> None:
        self.require()
        # Disarmed first: ``times`` starts at 1, so writing ``probability`` would arm the
        # injection with the settings not yet written (the default status carries DNR, and
        # one I/O failed for good that way). ``times`` last: it arms it.
        self.write(times=0)
        self.write(**{k: v for k, v in self.settings.items() if k != "times"})
        self.write(times=self.settings["times"])

    def lift(self) -> None:
        if self.available():  # a removed controller took its directory with it
            self.write(times=0, probability=0)

    def describe(self) -> str:
        status = self.settings["status"]
        times, share = self.settings["times"], self.settings["probability"]
        how = "retryable" if self.settings["dont_retry"] == 0 else "DNR"
        return (f"{'every' if times < 0 else times} command(s) of {self.target}"
                f"{f' ({share}% of them)' if share < 100 else ''} complete with "
                f"{STATUS_NAMES.get(status, 'status')} ({status:#05x}, {how})")


class TimeoutInjection(_Attrs):
    """fail_io_timeout on one disk: ``times`` of its requests (each with ``probability``
    percent) have their completion ignored, so they time out and the driver's timeout
    handler, abort and reset paths run against a device that did answer."""

    def __init__(self, guest: Guest, disk: str, probability: int = 100, times: int = 1) -> None:
        super().__init__(guest, f"{DEBUGFS}/fail_io_timeout")
        self.disk = disk
        self.settings = {"probability": probability, "interval": 1, "verbose": 1}
        self.times = times

    def apply(self) -> None:
        self.require()
        self.write(times=0)  # disarmed until every setting is in (see StatusInjection)
        self.write(**self.settings)
        self.guest.run(f"echo 1 > /sys/block/{self.disk}/io-timeout-fail", check=True)
        self.write(times=self.times)

    def lift(self) -> None:
        self.write(times=0, probability=0)
        self.guest.run(f"echo 0 > /sys/block/{self.disk}/io-timeout-fail 2>/dev/null")

    def describe(self) -> str:
        return f"the completions of {self.times} I/O(s) of {self.disk} are dropped"


class AdminFailuresDuringReset(Fault):
    """A sysfs reset while ``times`` admin commands of the controller fail (Internal Error,
    DNR), applied until the driver has decided: ``state`` "live" again, or the controller
    given up ("gone", "dead"), or what it was left in after a minute. Lifting binds the
    driver again to the PCI function at ``address`` where it let the controller go."""

    side = "guest"

    def __init__(self, ctrl: Controller, address: str, times: int, timeout: float) -> None:
        self.ctrl, self.address, self.times, self.timeout = ctrl, address, times, timeout
        self.state = ""

    def apply(self) -> None:
        guest = self.ctrl.guest
        with StatusInjection(guest, self.ctrl.name, SC_INTERNAL, times=self.times):
            self.applied_at, _ = stamped(guest, f"echo 1 > {self.ctrl.sysfs}/reset_controller"
                                         " || true", self.timeout)
            _, self.state = self.ctrl.wait_settled("live|gone|dead", within=60)

    def lift(self) -> None:
        if self.state != "live":
            stamped(self.ctrl.guest, f"echo {self.address} > /sys/bus/pci/drivers/nvme/bind "
                    "2>/dev/null || echo 1 > /sys/bus/pci/rescan", self.timeout)

    def describe(self) -> str:
        return (f"sysfs reset of {self.ctrl.name} with {self.times} admin command(s) failing "
                "(Internal Error, DNR)")
