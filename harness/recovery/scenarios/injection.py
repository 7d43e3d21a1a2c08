"""Faults the guest kernel injects into its own NVMe driver (debugfs fault injection).

They need a kernel built with fault injection (``python -m harness kernel build``; Debian's
kernels lack it, so there they are skipped with that reason). Being guest-side, they also run
on a physical machine with a real drive.
"""

from __future__ import annotations

from harness.faults.debugfs import (
    SC_DATA_XFER_ERROR,
    SC_UNWRITTEN_BLOCK,
    AdminFailuresDuringReset,
    StatusInjection,
    TimeoutInjection,
)
from harness.machine.topology import Topology
from harness.reading.kmsg import CONTROLLER_GIVEN_UP, accepts_give_up
from harness.reading.verdict import FailureKind
from harness.recovery.context import Context
from harness.recovery.registry import scenario
from harness.recovery.removal import remove_and_restore
from harness.recovery.scenarios.timeouts import IO_TIMEOUT, SHORT_IO_TIMEOUT

NVME_FAULT_INJECTION = ("CONFIG_FAULT_INJECTION_DEBUG_FS",)


@scenario("fi-io-timeout",
          "the block layer drops the completions of a few I/Os (fail_io_timeout) under the "
          f"verifying load, so they time out (nvme_core.io_timeout={IO_TIMEOUT}) although the "
          "device answered: the driver's timeout, abort and reset paths run; the controller "
          "is live again, the requests are retried without an error, every completed write "
          "intact",
          Topology.build(kernel_args=SHORT_IO_TIMEOUT), live_bound=120,
          kernel_config=("CONFIG_FAIL_IO_TIMEOUT", "CONFIG_FAULT_INJECTION_DEBUG_FS"))
def fi_io_timeout(ctx: Context) -> None:
    ctrl = ctx.controller()
    times = ctx.rng.randint(1, 3)
    loads = ctx.start_loads(runtime=4 * IO_TIMEOUT + 15)
    ctx.sleep(ctx.rng.uniform(1.0, 2.0))
    mark = ctx.log.mark()
    with ctx.inject(TimeoutInjection(ctx.guest, ctx.namespace_name(), times=times)):
        # the first I/O times out after IO_TIMEOUT, the abort goes unanswered for another
        ctx.sleep(2 * IO_TIMEOUT + 3)
    ctx.wait_live(ctrl)
    log = "\n".join(ctx.log.since(mark))
    if "timeout" not in log:
        ctx.fail(FailureKind.NOT_RECOVERED, "no I/O timeout was logged: the dropped completions "
                 "never reached the driver's timeout handler, so nothing was tested",
                 log[-2000:])
    ctx.finish_loads(loads)


@scenario("fi-status",
          "the driver completes reads and writes with injected NVMe statuses (fault_inject): "
          "transient ones (Data Transfer Error, retryable) under the verifying load must be "
          "retried without an error reaching it; a final one (DNR) on a single read must reach "
          "the reader as an I/O error; no reset, every completed write intact",
          kernel_config=NVME_FAULT_INJECTION)
def fi_status(ctx: Context) -> None:
    loads = ctx.start_loads(runtime=14)
    ctx.sleep(ctx.rng.uniform(1.0, 2.0))
    mark = ctx.log.mark()
    count = ctx.rng.randint(5, 20)
    with ctx.inject(StatusInjection(ctx.guest, ctx.namespace_name(), SC_DATA_XFER_ERROR,
                                    probability=20, times=count, retry=True)):
        ctx.sleep(ctx.rng.uniform(3.0, 5.0))
    ctx.finish_loads(loads)
    with ctx.inject(StatusInjection(ctx.guest, ctx.namespace_name(), SC_UNWRITTEN_BLOCK, times=1)):
        read = ctx.guest.run(f"dd if={ctx.namespace()} of=/dev/null bs=4k count=1 skip=300000 "
                             "iflag=direct", timeout=60)
    if read.ok:
        ctx.fail(FailureKind.IO_ERROR, "a read completed with an injected DNR status succeeded: "
                 "the error was lost")
    log = "\n".join(ctx.log.since(mark))
    if "FAULT_INJECTION: forcing a failure" not in log:
        ctx.fail(FailureKind.NOT_RECOVERED, "the kernel log shows no injected failure: the "
                 "scenario tested nothing", log[-2000:])
    if "reset" in log:
        ctx.fail(FailureKind.NOT_RECOVERED, "the controller was reset for an error status",
                 log[-2000:])


@scenario("fi-admin-during-reset",
          "an admin command fails (fault_inject on the controller, Internal Error, DNR) while a "
          "sysfs reset brings the controller up: the driver either recovers or gives the "
          "controller up cleanly (I/O fails, nothing hangs); then the driver is bound again, "
          "the controller is live, every completed write reads back intact and every failed "
          "one holds its old or new data",
          live_bound=60, kernel_config=NVME_FAULT_INJECTION,
          reset_bound=None)  # a given-up controller is away until the driver is bound again
@accepts_give_up(*CONTROLLER_GIVEN_UP)  # the failed admin command may fail the reset
def fi_admin_during_reset(ctx: Context) -> None:
    ctrl = ctx.controller()
    address = ctrl.pci_address  # read while the controller is there
    faults: list[AdminFailuresDuringReset] = []

    def failing_admin_commands() -> AdminFailuresDuringReset:
        faults.append(AdminFailuresDuringReset(ctrl, address, ctx.rng.randint(1, 3),
                                               ctx.live_bound))
        return faults[-1]

    def settle(mark: float) -> bool:
        state = faults[-1].state
        ctx.event("state_after_fault", state)
        if state not in ("live", "gone", "dead"):
            ctx.fail(FailureKind.NOT_RECOVERED, f"after a reset with failing admin commands "
                     f"the controller stayed {state!r}: neither recovered nor given up")
        return state == "live"  # recovered: the load under it must not have noticed

    remove_and_restore(ctx, failing_admin_commands, settle)
