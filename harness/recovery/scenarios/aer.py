"""PCIe errors reported above a controller under I/O: the kernel's AER driver runs the NVMe
driver's error handlers (``error_detected``, then ``resume``; for a fatal error a reset of the
link comes between them, and ``slot_reset`` restarts the controller).

The errors come from the root port: QEMU's NVMe function has no AER capability, and the AER
driver recovers every function below the port that reported. In a VM uncorrectable errors
are injected from the host (QEMU's ``pcie_aer_inject_error``); correctable ones in the guest
by the kernel's ``aer_inject`` module (QEMU 7.2 delivers no correctable error). On a real
machine ``aer_inject`` makes up all three, at the port above the controller. The OS must own
AER: QEMU's q35 firmware grants it (ACPI _OSC), and with no HEST table there is no
firmware-first handling. The root port's link runs at 2.5 GT/s: see
:attr:`harness.machine.topology.Topology.link_speed` for why a fatal error needs it.
"""

from __future__ import annotations

import time

from harness.errors import HarnessError
from harness.faults import Fault
from harness.faults.guest import AerInject
from harness.faults.host import AerError
from harness.guest.nvme import Controller, PciFunction
from harness.machine.topology import Topology
from harness.reading.verdict import FailureKind
from harness.recovery.context import Context
from harness.recovery.registry import scenario

BAD_TLP = 0x40  # a correctable error status bit (Bad TLP)
# QEMU's names for the uncorrectable errors, and their status bits for aer_inject (whose
# severity the port's Uncorrectable Error Severity register decides, as for a real error)
NONFATAL, FATAL = "COMP_TIME", "DLP"  # Completion Timeout; Data Link Protocol Error
STATUS_BITS = {NONFATAL: 0x4000, FATAL: 0x10}
SEVERITIES = ("correctable", "nonfatal", "fatal")
SEEN_WITHIN_S = 10.0  # the AER driver counts the error (its interrupt) within this
# the AER driver's last word on an uncorrectable error, 5.10 to 6.12
RECOVERED, NOT_RECOVERED = "AER: device recovery successful", "AER: device recovery failed"


def _fault(ctx: Context, ctrl: Controller, port: str, severity: str) -> Fault:
    if severity == "correctable":
        return AerInject(ctx.guest, port, ctx.live_bound, correctable=BAD_TLP)
    error = FATAL if severity == "fatal" else NONFATAL
    if not ctx.vm.has_host_side:
        return AerInject(ctx.guest, port, ctx.live_bound, uncorrectable=STATUS_BITS[error])
    return AerError(ctx.vm.qmp, f"rp{ctrl.name.removeprefix('nvme')}", error)


def _counted(ctx: Context, port: PciFunction, severity: str, before: int) -> None:
    """Wait for the port's counter of ``severity`` to pass ``before``: the kernel took the AER
    path; else the scenario tested nothing."""
    deadline = time.monotonic() + SEEN_WITHIN_S
    while port.aer_counts().get(severity, 0) <= before:
        if time.monotonic() > deadline:
            raise HarnessError(f"the {severity} AER error injected at {port.address} was not "
                               f"counted within {SEEN_WITHIN_S:g}s (aer_dev_{severity}): the "
                               "kernel did not take the AER path, nothing was tested")
        ctx.sleep(0.2)


def _recovery_outcome(ctx: Context, mark: float) -> list[str]:
    """The AER driver's verdict on an uncorrectable error, from the kernel log after ``mark``
    (it logs one once every function below the port has been through recovery)."""
    deadline = time.monotonic() + ctx.live_bound
    while True:
        lines = [ln for ln in ctx.log.since(mark) if RECOVERED in ln or NOT_RECOVERED in ln]
        if lines or time.monotonic() > deadline:
            return lines
        ctx.sleep(0.2)


@scenario("aer-under-load",
          "PCIe errors reported by the controller's root port under the verifying load, four "
          "to six in a seeded order, each severity at least once: a correctable one (guest "
          "aer_inject) changes nothing; an uncorrectable non-fatal one (QEMU "
          "pcie_aer_inject_error; aer_inject on a real machine) runs the driver's "
          "error_detected and resume; a fatal one resets the link between them, and "
          "slot_reset restarts the controller. Each must be "
          "counted by the port (else nothing was tested), the AER driver must report "
          "recovery, the controller be live and writes complete again, no I/O error, every "
          "completed write intact",
          Topology.build(link_speed="2.5"), ci=False)
def aer_under_load(ctx: Context) -> None:
    ctrl = ctx.controller()
    port = PciFunction(ctx.guest, ctrl.port_address)
    if not port.aer_counts():
        raise HarnessError(f"the root port {port.address} has no AER counters (aer_dev_*): "
                           "the kernel does not own AER there, nothing can be tested")
    order = list(SEVERITIES)
    ctx.rng.shuffle(order)
    order += [ctx.rng.choice(SEVERITIES) for _ in range(ctx.rng.randint(1, 3))]
    gaps = [ctx.rng.uniform(1.0, 2.5) for _ in order]
    loads = ctx.start_loads(runtime=sum(gaps) + 4 * len(order) + 6)
    for severity, gap in zip(order, gaps, strict=True):
        ctx.sleep(gap)
        before = port.aer_counts().get(severity, 0)
        mark = ctx.log.mark()
        with ctx.inject(_fault(ctx, ctrl, port.address, severity)):
            _counted(ctx, port, severity, before)
        if severity != "correctable":
            outcome = _recovery_outcome(ctx, mark)
            if not outcome or NOT_RECOVERED in outcome[-1]:
                ctx.fail(FailureKind.NOT_RECOVERED,
                         f"the AER driver did not recover from a {severity} error: "
                         f"{outcome[-1].strip() if outcome else 'no verdict logged'}",
                         "\n".join(ctx.log.since(mark)[-30:]), code="aer-not-recovered")
        ctx.wait_live(ctrl)
        ctx.writes_resume(loads)
    ctx.finish_loads(loads)
