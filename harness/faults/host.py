"""Host-side faults, from outside the guest (QMP, QEMU's process): the device under test
misbehaves, or the machine stops, not the guest's own doing.

A physical target has no QMP; scenarios that need these faults do not run there.
"""

from __future__ import annotations

import re
import time
from typing import Any

from harness.errors import HarnessError
from harness.faults import Fault, FaultRefused, FaultStuck
from harness.machine.qemu import NamespaceNames
from harness.machine.qmp import Qmp
from harness.machine.system import System
from harness.machine.vm import VM

_THROTTLE_FIELDS = ("bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr")


class Throttle(Fault):
    """Limit a namespace's backend (``block_set_io_throttle``): a slow or stalled device.

    Safe where a blkdebug breakpoint is not: QEMU drains throttled requests when the guest
    resets the controller, instead of deadlocking.
    """

    def __init__(self, qmp: Qmp, ns: NamespaceNames, **limits: int) -> None:
        unknown = set(limits) - set(_THROTTLE_FIELDS)
        if unknown:
            raise ValueError(f"unknown throttle fields {sorted(unknown)}")
        self.qmp, self.ns, self.limits = qmp, ns, limits

    def _set(self, **limits: int) -> None:
        values = dict.fromkeys(_THROTTLE_FIELDS, 0) | limits
        self.qmp.cmd("block_set_io_throttle", id=self.ns.qdev, **values)

    def apply(self) -> None:
        self._set(**self.limits)

    def lift(self) -> None:
        self._set()

    def describe(self) -> str:
        limits = ", ".join(f"{k}={v}" for k, v in self.limits.items())
        return f"backend of {self.ns.qdev} throttled to {limits}"


class AerError(Fault):
    """An uncorrectable PCIe error reported by the root port ``port`` above a controller
    (``pcie_aer_inject_error``, a human-monitor command reached through QMP): the kernel's
    AER driver then recovers every function below the port, calling the NVMe driver's error
    handlers. ``error``: QEMU's name for it; QEMU 7.2 makes DLP, SDN, FCP, RX_OVER, MALF_TLP
    and INTN fatal. QEMU 7.2 delivers no correctable error (fixed in 8.0), and none from the
    NVMe function, which has no AER capability: errors come from the port."""

    FATAL = frozenset({"DLP", "SDN", "FCP", "RX_OVER", "MALF_TLP", "INTN"})

    def __init__(self, qmp: Qmp, port: str, error: str) -> None:
        self.qmp, self.port, self.error = qmp, port, error

    @property
    def severity(self) -> str:
        return "fatal" if self.error in self.FATAL else "nonfatal"

    def apply(self) -> None:
        reply = self.qmp.cmd("human-monitor-command",
                             **{"command-line": f"pcie_aer_inject_error {self.port} {self.error}"})
        if not str(reply).startswith("OK"):  # the monitor answers errors as text
            raise FaultRefused(f"pcie_aer_inject_error {self.port} {self.error}: {reply}")

    def describe(self) -> str:
        return f"PCIe AER {self.error} ({self.severity}) from {self.port}"


class InjectErrors(Fault):
    """Make the backend fail I/O (blkdebug ``inject-error``): media errors.

    blkdebug sees events only as the file child of the format node, and its rules cannot be
    changed in place in QEMU 7.2; so a blkdebug node is added over the namespace's file node
    and the raw node is reopened onto it, and reopened back onto the file node on exit.
    ``iotype`` (``read`` or ``write``) is the I/O that fails, from the first blkdebug event of
    that kind on (flushes keep working, or the switch back could not flush); ``sector``
    limits the errors to I/O touching that 512-byte sector; ``once`` fails only the first.
    """

    def __init__(self, qmp: Qmp, ns: NamespaceNames, iotype: str, errno: int = 5,
                 sector: int | None = None, once: bool = False) -> None:
        if iotype not in ("read", "write"):
            raise ValueError(f"iotype must be read or write, not {iotype!r}")
        self.qmp, self.ns = qmp, ns
        rule: dict[str, object] = {"event": f"{iotype}_aio", "iotype": iotype, "errno": errno,
                                   "once": once}
        if sector is not None:
            rule["sector"] = sector
        self.rule = rule
        self.node = f"{ns.file_node}-blkdebug"
        self.iotype = iotype

    def _reopen(self, file_node: str) -> None:
        self.qmp.cmd("blockdev-reopen", options=[
            {"driver": "raw", "node-name": self.ns.disk_node, "file": file_node}])

    def apply(self) -> None:
        self.qmp.cmd("blockdev-add", driver="blkdebug", **{"node-name": self.node},
                     image=self.ns.file_node, **{"inject-error": [self.rule]})
        try:
            self._reopen(self.node)
        except BaseException:
            self.qmp.cmd("blockdev-del", **{"node-name": self.node})
            raise

    def lift(self) -> None:
        self._reopen(self.ns.file_node)
        self.qmp.cmd("blockdev-del", **{"node-name": self.node})

    def describe(self) -> str:
        where = f" of sector {self.rule['sector']}" if "sector" in self.rule else ""
        return f"{self.iotype}s{where} fail ({self.ns.qdev})"


class DeviceRemoval(Fault):
    """Surprise removal of a controller (``device_del``) and its return on the same root
    port (``device_add``): applied once the guest has released it (DEVICE_DELETED)."""

    def __init__(self, qmp: Qmp, qdev: str, device: dict[str, Any], release_within: float) -> None:
        self.qmp, self.qdev, self.device = qmp, qdev, device
        self.release_within = release_within

    def apply(self) -> None:
        self.qmp.cmd("device_del", id=self.qdev)
        if self.qmp.wait_event("DEVICE_DELETED", timeout=self.release_within) is None:
            raise FaultStuck("the guest never released the removed controller "
                             "(no DEVICE_DELETED)")

    def lift(self) -> None:
        self.qmp.cmd("device_add", **self.device)

    def describe(self) -> str:
        return f"device_del {self.qdev}"


class MachineStop(Fault):
    """The whole VM stopped (QMP ``stop``) until lifted (``cont``): to the guest, time jumps."""

    stops_clock = True

    def __init__(self, qmp: Qmp) -> None:
        self.qmp = qmp

    def apply(self) -> None:
        self.qmp.cmd("stop")

    def lift(self) -> None:
        self.qmp.cmd("cont")

    def describe(self) -> str:
        return "VM stopped"


class CriticalWarning(Fault):
    """The controller raises a SMART critical warning (``qom-set``), so it sends the host an
    asynchronous event. Left raised: the scenario checks that the guest saw it."""

    def __init__(self, qmp: Qmp, qdev: str, warning: int) -> None:
        self.qmp, self.qdev, self.warning = qmp, qdev, warning

    def apply(self) -> None:
        self.qmp.cmd("qom-set", path=f"/machine/peripheral/{self.qdev}",
                     property="smart_critical_warning", value=self.warning)

    def describe(self) -> str:
        return f"smart_critical_warning={self.warning}"


class PowerCut(Fault):
    """The power goes (QEMU killed, or a real machine's power command) and the machine starts
    again on the same disks."""

    def __init__(self, vm: System) -> None:
        self.vm = vm

    def apply(self) -> None:
        self.vm.power_cycle()

    def describe(self) -> str:
        return "power cut"


# The PM core's lines on the console (its debug messages on, consoles awake): the devices are
# all suspended and the CPUs go idle; and pm_suspend's last word, whether it suspended or not.
_ENTERED = re.compile(rb"PM: suspend-to-idle\r?$", re.M)
_EXITED = re.compile(rb"PM: suspend exit\r?$", re.M)
WAKE_RETRY_S = 3.0  # a key that came too early (no wakeup armed yet) is sent again


class SuspendToIdle(Fault):
    """The guest suspends to idle (every device suspended, the CPUs idle, the machine in
    S0) and is woken, when lifted, by a key press on its PS/2 keyboard (QMP ``send-key``).

    On QEMU an RTC alarm cannot end it: Linux arms the RTC's ACPI fixed event, which QEMU
    raises only when waking from S3 (and S3 itself does not resume on QEMU 7.2 or 10.0:
    docs/design.md). ``device``: the NVMe function's PCI address; a suspend that failed
    there is the driver's refusal, anywhere else the harness's trouble. ``reset``: a
    controller's ``reset_controller`` file, written just before the suspend begins.
    """

    stops_clock = True  # the kernel suspends its timekeeping

    def __init__(self, vm: VM, device: str, within: float, reset: str = "") -> None:
        self.vm, self.device, self.within, self.reset = vm, device, within, reset
        self.console_from = 0  # the console log's size when the suspend began
        self._entered = 0.0  # when the console showed it suspended (host wall clock)

    def _seen(self, pattern: re.Pattern[bytes]) -> bool:
        """Whether the console printed ``pattern`` since the suspend began."""
        console = self.vm.console
        assert console is not None
        with open(console.log_path, "rb") as log:
            log.seek(self.console_from)
            return pattern.search(log.read()) is not None

    def apply(self) -> None:
        console = self.vm.console
        if console is None:
            raise HarnessError("suspend to idle needs the guest's console, to see it suspended")
        self.console_from = console.log_path.stat().st_size
        res = self.vm.guest.call("_suspend_start", *filter(None, [self.reset]), timeout=30)
        if res.exit_code:
            raise HarnessError(f"the guest cannot suspend: {res.stderr.strip()}")
        console.wait_for(lambda: self._seen(_ENTERED) or self._seen(_EXITED), self.within)
        if self._seen(_ENTERED):
            self._entered = time.time()  # seen after the fact: asleep by then
            return
        if not self._seen(_EXITED):
            raise FaultStuck(f"the guest had not suspended {self.within:g}s after it began to "
                             "(no 'PM: suspend-to-idle' on the console)")
        stats = self._end()
        failed = (f"suspend failed at {stats.get('last_failed_step')} of "
                  f"{stats.get('last_failed_dev') or 'no device'} "
                  f"(errno {stats.get('last_failed_errno')}, exit status {stats.get('rc')})")
        if self.device in stats.get("last_failed_dev", ""):
            raise FaultRefused(failed)
        raise HarnessError(f"the guest did not suspend: {failed}: nothing was tested")

    def lift(self) -> None:
        console = self.vm.console
        assert console is not None
        deadline = time.monotonic() + self.within
        first_key: float | None = None
        while not self._seen(_EXITED):
            if time.monotonic() > deadline:
                raise FaultRefused(f"the guest did not resume within {self.within:g}s of the "
                                   "first wake key (no 'PM: suspend exit' on the console)")
            if first_key is None:
                first_key = time.time()  # no key had woken it before this one was sent
            self.vm.qmp.cmd("send-key", keys=[{"type": "qcode", "data": "shift"}])
            console.wait_for(lambda: self._seen(_EXITED), WAKE_RETRY_S)
        if first_key is not None and first_key > self._entered > 0:
            self.asleep = (self._entered, first_key)
        stats = self._end()
        if stats.get("rc") != "0":
            raise FaultRefused(f"the suspend ended with exit status {stats.get('rc')} "
                               f"(failed at {stats.get('last_failed_step')} of "
                               f"{stats.get('last_failed_dev') or 'no device'})")

    def _end(self) -> dict[str, str]:
        """Put the guest's settings back; how its suspend went (``_suspend_end``'s lines)."""
        out = self.vm.guest.call("_suspend_end", timeout=60, check=True).stdout
        return dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)

    def describe(self) -> str:
        if not self.reset:
            return "suspend to idle"
        return f"suspend to idle, reset_controller {self.reset.split('/')[-2]} started with it"
