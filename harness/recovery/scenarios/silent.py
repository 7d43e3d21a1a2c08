"""A device that stops answering while the driver has a full queue.

The guest clears a bit of the controller's PCI command register (setpci, as blktests block/011
does): without Bus Master Enable the device can neither fetch commands nor post completions
(QEMU's NVMe fails its next DMA and reports Controller Fatal Status); without Memory Space
Enable its registers read as all ones. Unlike a sysfs reset, nothing is drained politely:
commands sit fetched or unfetched, the driver times out, and its cancel and requeue paths
must account for every one of them. Guest-side only, so they also run on a real machine.
"""

from __future__ import annotations

import time

from harness.errors import HarnessError
from harness.faults.guest import CommandBitsOff, SilencedDuringReset
from harness.guest.nvme import PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, Controller, PciFunction
from harness.machine.topology import Topology
from harness.reading.kmsg import CONTROLLER_GIVEN_UP, accepts_give_up
from harness.reading.verdict import FailureKind
from harness.recovery.context import Context
from harness.recovery.registry import Soak, scenario
from harness.recovery.removal import remove_and_restore
from harness.recovery.scenarios.timeouts import IO_TIMEOUT, SHORT_TIMEOUTS

SILENT = Topology.build(
    kernel_args=SHORT_TIMEOUTS)  # the driver notices a silent device after IO_TIMEOUT
# A silent device strands commands; the driver must act on them within this long: a timeout
# (IO_TIMEOUT, checked at a 1 s granularity), an abort that also times out, then the reset.
NOTICE_WITHIN = 4 * IO_TIMEOUT + 10
# How long a live controller may read back with bus mastering off: a reset disabling the
# device (up to CAP.TO = 7.5 s waiting for it to stop) before it marks itself resetting.
BUS_MASTER_BACK_S = 30
# What the driver's reset must have logged: it noticed the silence and acted on it.
NOTICED = ("timeout", "will reset", "controller is down")


def _noticed(ctx: Context, mark: float) -> str:
    lines = [ln for ln in ctx.log.since(mark) if any(n in ln for n in NOTICED)]
    return "\n".join(lines)


def _bus_mastering_back(ctx: Context, ctrl: Controller, pci: PciFunction) -> None:
    """A live controller must have bus mastering on again, or it cannot be doing I/O. Not
    judged in one reading: a reset the driver has just logged (e.g. the stability bug of
    6.1 timing I/O out again) first disables the device, clearing bus mastering, while the
    state still says live (6.1's nvme_timeout() changes it after nvme_dev_disable())."""
    deadline = time.monotonic() + BUS_MASTER_BACK_S
    while True:
        command = pci.command_while(f"{ctrl.sysfs}/state")
        if command is not None and command & PCI_COMMAND_MASTER:
            return
        if time.monotonic() >= deadline:
            break
        ctx.sleep(0.5)
    ctx.wait_live(ctrl)  # not live at all: that failure, with its own bound
    ctx.fail(FailureKind.NOT_RECOVERED, f"the controller has been live for "
             f"{BUS_MASTER_BACK_S}s with bus mastering off: it cannot be doing I/O")


def _silence_bus_master(ctx: Context, ctrl: Controller, pci: PciFunction,
                        silence: float) -> None:
    """Bus mastering off for ``silence`` seconds (not lifted: the driver's reset must enable
    it again); returns once the driver noticed, recovered and the device masters the bus."""
    mark = ctx.log.mark()
    ctx.inject(CommandBitsOff(ctrl, pci, PCI_COMMAND_MASTER, ctx.live_bound))
    ctx.sleep(silence)
    ctx.driver_reacts(ctrl, within=NOTICE_WITHIN, since=mark)
    ctx.wait_live(ctrl)
    if not _noticed(ctx, mark):
        ctx.fail(FailureKind.NOT_RECOVERED, f"the device was silent for {silence:.1f}s "
                 "and the driver logged no timeout: nothing was tested",
                 "\n".join(ctx.log.since(mark))[-2000:])
    _bus_mastering_back(ctx, ctrl, pci)


def _silence_s(ctx: Context) -> float:
    """A seeded silence, longer than the I/O timeout: the driver must time out."""
    return IO_TIMEOUT + ctx.rng.uniform(1.0, 4.0)


def _bus_master_off_once(ctx: Context) -> None:
    ctrl = ctx.controller()
    _silence_bus_master(ctx, ctrl, PciFunction(ctx.guest, ctrl.pci_address), _silence_s(ctx))


@scenario("bus-master-off",
          "Bus Master Enable cleared under the verifying load for a seeded time longer than "
          f"the I/O timeout ({IO_TIMEOUT} s), two or three times: the device cannot fetch or "
          "complete anything; the driver times out, resets (re-enabling bus mastering itself) "
          "and must complete or retry every stranded command: live again each time, no I/O "
          "error, nothing after the recovery, every completed write intact",
          SILENT, live_bound=120,
          # the gap: a request the recovery lost times out only after the I/O timeout, and
          # must do so before the next fault's own timeouts could hide it
          soak=Soak(_bus_master_off_once, gap=(IO_TIMEOUT + 1.0, IO_TIMEOUT + 3.0),
                    logs_trouble=True))
def bus_master_off(ctx: Context) -> None:
    ctrl = ctx.controller()
    pci = PciFunction(ctx.guest, ctrl.pci_address)
    rounds = [(ctx.rng.uniform(1.0, 3.0), _silence_s(ctx)) for _ in range(ctx.rng.randint(2, 3))]
    # long enough for every round, the driver noticing each silence late, and a tail of I/O
    # after the last recovery
    loads = ctx.start_loads(runtime=sum(g + s + 2 * IO_TIMEOUT for g, s in rounds) + 8)
    for gap, silence in rounds:
        ctx.sleep(gap)
        _silence_bus_master(ctx, ctrl, pci, silence)
    ctx.finish_loads(loads)


@scenario("mmio-off",
          "Memory Space Enable cleared under load (registers read as all ones): the driver "
          "must notice, and either give the controller up cleanly (I/O fails with an error, "
          "nothing hangs) or recover it; after the bit is restored and the bus rescanned the "
          "controller is live, every completed write reads back intact and every failed one "
          "holds its old or new data",
          SILENT, live_bound=120, reset_bound=None)  # away until the bit is restored
@accepts_give_up(*CONTROLLER_GIVEN_UP)  # the reset that meets the silent device may fail
def mmio_off(ctx: Context) -> None:
    ctrl = ctx.controller()
    pci = PciFunction(ctx.guest, ctrl.pci_address)
    marks: list[float] = []

    def settle(mark: float) -> bool:
        marks.append(mark)
        ctx.sleep(IO_TIMEOUT + ctx.rng.uniform(2.0, 5.0))
        ctx.driver_reacts(ctrl, within=NOTICE_WITHIN, since=mark)
        outcome = _settle(ctx, ctrl)
        ctx.event("driver_outcome", outcome)
        return outcome == "live"  # recovered by itself: the load under it must not notice

    remove_and_restore(ctx, CommandBitsOff(ctrl, pci, PCI_COMMAND_MEMORY, ctx.live_bound), settle)
    if not _noticed(ctx, marks[0]):
        ctx.fail(FailureKind.NOT_RECOVERED, "registers read as all ones and the driver logged "
                 "no timeout or reset: nothing was tested")


def _working_again(ctx: Context, ctrl: Controller, pci: PciFunction) -> str:
    """After the device went silent in the middle of a reset, what the driver made of it:
    "live" once the controller is live with its device working again (the driver's reset
    enables memory space and bus mastering again), else how it gave the controller up. A
    live state alone does not tell: the reset may have come back just before the silence
    (6.1), or come back with the device still silent, then found it fatal and reset again
    (6.12, seed 20261121)."""
    working = PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY
    deadline = time.monotonic() + NOTICE_WITHIN + ctx.live_bound
    while True:
        outcome = _settle(ctx, ctrl)
        if outcome != "live":
            return outcome
        try:
            command = pci.command_while(f"{ctrl.sysfs}/state")
        except HarnessError:  # the controller went away meanwhile: settle again
            command = None
        if command is not None and command & working == working:
            return "live"
        if time.monotonic() >= deadline:
            ctx.fail(FailureKind.HANG, f"{ctrl.name} stayed live for "
                     f"{NOTICE_WITHIN + ctx.live_bound:g}s with its device silent: the driver "
                     "never acted on its stranded commands")
        ctx.sleep(0.5)


def _settle(ctx: Context, ctrl: Controller) -> str:
    """Wait until the driver has decided (live again, or the controller gone or dead);
    a controller left resetting or connecting past the bound is a failure."""
    settled, outcome = ctrl.wait_settled("live|gone|dead|deleting*", within=ctx.live_bound)
    if not settled:
        ctx.fail(FailureKind.NOT_RECOVERED, f"{ctrl.name} neither recovered nor was given up "
                 f"within {ctx.live_bound:g}s of the device going silent: stuck-{outcome}")
    return outcome


@scenario("dead-during-reset",
          "the device goes silent (bus master or memory space off, seeded) while a sysfs reset "
          "is already in progress (right after it starts, or once the driver is bringing the "
          "controller back): the reset must not hang; the driver recovers (the load sees no "
          "error) or gives up cleanly; after the bit is restored the controller is live, "
          "every completed write reads back intact and every failed one holds its old or new data",
          SILENT, live_bound=120, reset_bound=None)  # away until the bit is restored
@accepts_give_up(*CONTROLLER_GIVEN_UP)  # the reset it silences may fail
def dead_during_reset(ctx: Context) -> None:
    ctrl = ctx.controller()
    pci = PciFunction(ctx.guest, ctrl.pci_address)
    silence = ctx.rng.choice([PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY])
    phase = ctx.rng.choice(["resetting", "connecting"])
    fault = SilencedDuringReset(ctrl, pci, silence, phase, ctx.live_bound)

    def settle(mark: float) -> bool:
        # the reset may have come back live just before the silence: that is no recovery to
        # await writes after (the device is silent; the driver needs its timeout to notice)
        ctx.event("silenced_in_state", fault.seen)
        outcome = _working_again(ctx, ctrl, pci)
        ctx.event("driver_outcome", outcome)
        return outcome == "live"  # recovered by itself: the load under it must not notice

    remove_and_restore(ctx, fault, settle)
