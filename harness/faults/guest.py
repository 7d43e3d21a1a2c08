"""Guest-side faults: what the guest itself does to its controller through sysfs and the
PCI configuration space (setpci). Nothing here needs QEMU: they run on a physical machine
with a real drive as well.
"""

from __future__ import annotations

import struct

from harness.errors import GuestHang
from harness.faults import Fault, FaultRefused
from harness.guest.nvme import (
    PCI_COMMAND_MASTER,
    PCI_COMMAND_MEMORY,
    Controller,
    PciFunction,
    ResetRefused,
)
from harness.guest.ssh import Background, Guest

_BITS = {PCI_COMMAND_MASTER: "bus master", PCI_COMMAND_MEMORY: "memory space",
         PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY: "bus master and memory space"}


def stamped(guest: Guest, command: str, timeout: float) -> tuple[float, str]:
    """Run the shell ``command`` (which may call guest library functions) stamped with the
    guest's clock at its start; (stamp, stdout). Raises :class:`FaultRefused` if it failed."""
    res = guest.call("_run_stamped", command, timeout=timeout)
    out, _, tail = res.stdout.rpartition("@@act ")
    t0, rc = tail.split()
    if rc != "0":
        raise FaultRefused(f"exit code {rc}: {res.stderr.strip()[-300:]}")
    return float(t0), out


class GuestCommand(Fault):
    """A guest shell command that disturbs the controller, optionally undone by another;
    ``output``: what it printed."""

    side = "guest"

    def __init__(self, guest: Guest, command: str, what: str, timeout: float,
                 undo: str = "") -> None:
        self.guest, self.command, self.what, self.timeout = guest, command, what, timeout
        self.undo = undo
        self.output = ""

    def apply(self) -> None:
        self.applied_at, self.output = stamped(self.guest, self.command, self.timeout)

    def lift(self) -> None:
        if self.undo:
            stamped(self.guest, self.undo, self.timeout)

    def describe(self) -> str:
        return self.what


class CommandLoop(Fault):
    """Management commands run in a loop in the background: a guest library ``function``
    with its ``args``; ``job``: the loop, whose output the scenario reads when it ends."""

    side = "guest"

    def __init__(self, guest: Guest, what: str, function: str, *args: object) -> None:
        self.guest, self.what, self.function, self.args = guest, what, function, args
        self.job: Background | None = None

    def apply(self) -> None:
        self.job = self.guest.call_background(self.function, *self.args)

    def describe(self) -> str:
        return self.what


class CpuOffline(Fault):
    """A CPU taken offline (sysfs ``online``), back online when lifted. blk-mq must finish
    or re-issue the requests of a queue whose CPUs all went away before the queue's
    interrupt is shut down with them."""

    side = "guest"

    def __init__(self, guest: Guest, cpu: int, timeout: float) -> None:
        self.guest, self.cpu, self.timeout = guest, cpu, timeout
        self.online = f"/sys/devices/system/cpu/cpu{cpu}/online"

    def apply(self) -> None:
        self.applied_at, _ = stamped(self.guest, f'echo 0 > {self.online} && read -r s < '
                                     f'{self.online} && [ "$s" = 0 ]', self.timeout)

    def lift(self) -> None:
        stamped(self.guest, f"echo 1 > {self.online}", self.timeout)

    def describe(self) -> str:
        return f"CPU {self.cpu} offline"


class PciRemoval(Fault):
    """The controller's PCI function removed (sysfs ``remove``), brought back by a rescan of
    the bus."""

    side = "guest"

    def __init__(self, pci: PciFunction, timeout: float) -> None:
        self.pci, self.timeout = pci, timeout

    def apply(self) -> None:
        self.applied_at, _ = stamped(self.pci.guest, f"echo 1 > /sys/bus/pci/devices/"
                                     f"{self.pci.address}/remove", self.timeout)

    def lift(self) -> None:
        stamped(self.pci.guest, "echo 1 > /sys/bus/pci/rescan", self.timeout)

    def describe(self) -> str:
        return f"PCI remove of {self.pci.address}"


class SysfsReset(Fault):
    """``echo 1 > reset_controller``, waited for until ``live`` again (within ``bound``);
    ``live_at``: when, on the guest's clock. Raises what
    :meth:`~harness.guest.nvme.Controller.reset_and_wait` raises."""

    side = "guest"

    def __init__(self, ctrl: Controller, bound: float) -> None:
        self.ctrl, self.bound = ctrl, bound
        self.live_at: float | None = None
        self.outcome = ""  # how it went wrong, for the timeline

    def apply(self) -> None:
        try:
            self.applied_at, self.live_at = self.ctrl.reset_and_wait(self.bound)
        except ResetRefused:
            self.outcome = "refused"
            raise
        except GuestHang:
            self.outcome = "hung"
            raise

    def describe(self) -> str:
        return f"reset_controller {self.ctrl.name}" + (f" ({self.outcome})" if self.outcome
                                                        else "")


class ModuleParameters(Fault):
    """Writable parameters of a loaded module changed (``/sys/module/M/parameters``), put back
    as they were when lifted. The NVMe driver samples ``write_queues`` and ``poll_queues`` at
    each reset: the next one rebuilds the tag set with that many hardware queues."""

    side = "guest"

    def __init__(self, guest: Guest, module: str, timeout: float, **values: int) -> None:
        self.guest, self.module, self.timeout, self.values = guest, module, timeout, values
        self.found: dict[str, str] = {}

    def _path(self, name: str) -> str:
        return f"/sys/module/{self.module}/parameters/{name}"

    def apply(self) -> None:
        names = sorted(self.values)
        out = self.guest.run("cat " + " ".join(map(self._path, names)), timeout=self.timeout,
                             check=True).stdout.split()
        self.found = dict(zip(names, out, strict=True))
        self.applied_at, _ = stamped(self.guest, " && ".join(
            f"echo {self.values[n]} > {self._path(n)}" for n in names), self.timeout)

    def lift(self) -> None:
        stamped(self.guest, " && ".join(f"echo {v} > {self._path(n)}"
                                        for n, v in sorted(self.found.items())), self.timeout)

    def describe(self) -> str:
        return f"{self.module} " + " ".join(f"{n}={v}" for n, v in sorted(self.values.items()))


class AerInject(Fault):
    """A PCIe error reported by the port at ``port`` (its PCI address), made up in the guest by
    the kernel's ``aer_inject`` module: it answers the AER driver's reads of the port's
    registers and raises its interrupt, so the AER driver recovers every function below the
    port as for a real error. ``correctable`` / ``uncorrectable``: the status bits (e.g.
    0x40 Bad TLP; 0x4000 Completion Timeout, non-fatal; 0x10 Data Link Protocol, fatal).
    Lifting unloads the module where applying loaded it: until then it answers for the port's
    AER registers, and the AER driver would not see a real error there."""

    side = "guest"

    def __init__(self, guest: Guest, port: str, timeout: float, correctable: int = 0,
                 uncorrectable: int = 0) -> None:
        self.guest, self.port, self.timeout = guest, port, timeout
        self.correctable, self.uncorrectable = correctable, uncorrectable
        self.loaded = False

    def record(self) -> bytes:
        """The module's ``struct aer_error_inj``: bus, device, function, uncorrectable and
        correctable status, four header log words, PCI domain."""
        domain, bus, devfn = self.port.split(":")
        dev, fn = devfn.split(".")
        return struct.pack("<BBBxIIIIIII", int(bus, 16), int(dev, 16), int(fn, 16),
                           self.uncorrectable, self.correctable, 0, 0, 0, 0, int(domain, 16))

    def apply(self) -> None:
        escaped = "".join(f"\\x{b:02x}" for b in self.record())
        self.applied_at, out = stamped(
            self.guest, "{ [ -c /dev/aer_inject ] || { modprobe aer_inject && echo loaded; }; "
            f"}} && printf '{escaped}' > /dev/aer_inject", self.timeout)
        self.loaded = "loaded" in out.split()

    def lift(self) -> None:
        if self.loaded:
            stamped(self.guest, "rmmod aer_inject", self.timeout)

    def describe(self) -> str:
        what = (f"correctable {self.correctable:#x}" if self.correctable
                else f"uncorrectable {self.uncorrectable:#x}")
        return f"PCIe AER {what} from {self.port} (aer_inject)"


class CommandBitsOff(Fault):
    """Bits of the function's PCI command register cleared (as blktests block/011 does):
    without Bus Master Enable the device can neither fetch commands nor post completions,
    without Memory Space Enable its registers read as all ones. The driver must notice by
    itself; lifting sets the bits again and, should the driver have let the function go,
    rescans the bus and binds it."""

    side = "guest"

    def __init__(self, ctrl: Controller, pci: PciFunction, bits: int, timeout: float) -> None:
        self.ctrl, self.pci, self.bits, self.timeout = ctrl, pci, bits, timeout
        self.silences = ctrl.name

    def apply(self) -> None:
        self.applied_at, _ = stamped(self.ctrl.guest, self.pci.set_command(self.bits, False),
                                     self.timeout)

    def lift(self) -> None:
        stamped(self.ctrl.guest, self.pci.restore_command(self.bits), self.timeout)

    def describe(self) -> str:
        return f"{_BITS[self.bits]} off ({self.pci.address})"


class SilencedDuringReset(CommandBitsOff):
    """A sysfs reset started, and the device silenced (``bits`` cleared) as soon as the
    controller's state shows ``phase`` ("resetting": out of live; "connecting"), or at once
    should the reset end first; ``seen``: the state it was silenced in. One guest command of
    builtins: the phases last tens of ms. Lifting restores bus mastering and memory space."""

    def __init__(self, ctrl: Controller, pci: PciFunction, bits: int, phase: str,
                 timeout: float) -> None:
        super().__init__(ctrl, pci, bits, timeout)
        self.phase = phase
        self.seen = ""

    def apply(self) -> None:
        self.applied_at, out = stamped(
            self.ctrl.guest, self.pci.silence_during_reset(self.ctrl, self.bits, self.phase),
            self.timeout)
        at, self.seen = out.split()
        self.silenced_at = float(at)

    def lift(self) -> None:
        stamped(self.ctrl.guest,
                self.pci.restore_command(PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY), self.timeout)

    def describe(self) -> str:
        return f"{_BITS[self.bits]} off during a reset of {self.ctrl.name} ({self.phase})"
