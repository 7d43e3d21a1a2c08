"""Faults the device itself suffers, injected from the host through QMP."""

from __future__ import annotations

import json

from harness.faults.host import (
    CriticalWarning,
    DeviceRemoval,
    InjectErrors,
    MachineStop,
    Throttle,
)
from harness.machine.qemu import controller_device
from harness.machine.topology import Topology
from harness.reading import kmsg
from harness.reading.verdict import FailureKind
from harness.recovery.context import Context
from harness.recovery.known import version_tuple
from harness.recovery.registry import Soak, scenario
from harness.recovery.removal import remove_and_restore
from harness.recovery.scenarios.timeouts import IO_TIMEOUT, SHORT_IO_TIMEOUT


def _kernel_log(ctx: Context) -> str:
    return ctx.guest.run("dmesg", timeout=30).stdout


def _stall_past_timeout(ctx: Context) -> None:
    """The backend stalled (QMP throttle) past the driver's I/O timeout, then released;
    returns once the controller is live and writes complete again. No I/O timeout logged
    meanwhile: the stall did not reach the driver, nothing was tested."""
    stall = IO_TIMEOUT + ctx.rng.uniform(2.0, 4.0)
    ctrl = ctx.controller()
    mark = ctx.log.mark()
    with ctx.inject(Throttle(ctx.vm.qmp, ctx.vm.namespace(0, 1), iops=1)):
        ctx.sleep(stall)
    ctx.wait_live(ctrl)
    ctx.writes_resume([ld for ld in ctx.loads if ld.running])
    if not kmsg.io_timeouts(ctx.log.read_log(), mark):
        ctx.fail(FailureKind.NOT_RECOVERED, f"no I/O timeout was logged in {stall:.1f}s of "
                 "stall: it did not reach the driver's timeout, so nothing was tested",
                 "\n".join(ctx.log.since(mark))[-2000:])


@scenario("stall-timeout",
          "the namespace's backend stalls (QMP throttle) until I/O passes the driver's timeout "
          f"(nvme_core.io_timeout={IO_TIMEOUT}); the driver aborts and resets; the stall is "
          "lifted; the controller recovers, writes complete again, no I/O error, every "
          "completed write intact",
          Topology.build(kernel_args=SHORT_IO_TIMEOUT), live_bound=180,
          reset_bound=None, resume_bound=None,  # the throttle holds the reset and the writes
          # the gap: a request the recovery lost times out only after the I/O timeout, and
          # must do so before the next stall's own timeouts could hide it
          soak=Soak(_stall_past_timeout, gap=(IO_TIMEOUT + 1.0, IO_TIMEOUT + 3.0),
                    logs_trouble=True),
          host_side="QMP: the namespace's backend throttled")
def stall_timeout(ctx: Context) -> None:
    loads = ctx.start_loads(runtime=IO_TIMEOUT + 4.0 + 15)
    ctx.sleep(ctx.rng.uniform(1.5, 3.0))
    _stall_past_timeout(ctx)
    ctx.finish_loads(loads)


@scenario("media-error",
          "the backend fails reads of one sector and writes of another (blkdebug): exactly those "
          "I/Os fail, with Unrecovered Read Error / Write Fault and a medium error, the "
          "controller is not reset, and the verifying load elsewhere sees no error",
          host_side="QMP: the backend's blkdebug errors")
def media_error(ctx: Context) -> None:
    ns = ctx.vm.namespace(0, 1)
    # The load owns the first 512M (2 jobs x 256M); the faults sit beyond it.
    bad_read = (768 << 20) // 512 + ctx.rng.randrange(0, 1024) * 8
    bad_write = bad_read + 8 * ctx.rng.randrange(16, 1024)
    ctx.guest.run(f"dd if=/dev/urandom of=/dev/nvme0n1 bs=4k seek={bad_read // 8} count=1 "
                  "oflag=direct", check=True)
    loads = ctx.start_loads(runtime=14)
    ctx.sleep(1.5)
    resets_before = _kernel_log(ctx).count("reset")
    with ctx.inject(InjectErrors(ctx.vm.qmp, ns, iotype="read", sector=bad_read)):
        read = ctx.guest.run(f"dd if=/dev/nvme0n1 of=/dev/null bs=4k skip={bad_read // 8} "
                             "count=1 iflag=direct", timeout=60)
    with ctx.inject(InjectErrors(ctx.vm.qmp, ns, iotype="write", sector=bad_write)):
        write = ctx.guest.run(f"dd if=/dev/zero of=/dev/nvme0n1 bs=4k seek={bad_write // 8} "
                              "count=1 oflag=direct", timeout=60)
    for what, res in (("read", read), ("write", write)):
        if res.ok:
            ctx.fail(FailureKind.IO_ERROR, f"the faulted {what} succeeded: the error was lost")
        if "No data available" not in res.stderr:
            ctx.fail(FailureKind.IO_ERROR, f"the faulted {what} failed with {res.stderr.strip()!r}"
                     ", not the medium error (ENODATA) the block layer gives media errors")
    log = _kernel_log(ctx)
    # Every kernel logs the block layer's view, a medium error naming the request's
    # direction; since 5.18 the driver also logs the NVMe status itself.
    verbose = version_tuple(ctx.qemu_vm().image.kernel.release)[:2] >= (5, 18)
    for status, op, what in (("sc 0x81", "op 0x0:(READ)", "Unrecovered Read Error"),
                             ("sc 0x80", "op 0x1:(WRITE)", "Write Fault")):
        if not any("critical medium error" in line and op in line
                   for line in log.splitlines()):
            ctx.fail(FailureKind.IO_ERROR, f"the kernel log has no medium error on a {op} "
                     "request", log[-2000:])
        if verbose and status not in log:
            ctx.fail(FailureKind.IO_ERROR, f"the kernel log has no NVMe {what} ({status})",
                     log[-2000:])
    if log.count("reset") != resets_before:
        ctx.fail(FailureKind.NOT_RECOVERED, "the controller was reset for a media error",
                 log[-2000:])
    reread = ctx.guest.run(f"dd if=/dev/nvme0n1 of=/dev/null bs=4k skip={bad_read // 8} "
                           "count=1 iflag=direct", timeout=60)
    if not reread.ok:
        ctx.fail(FailureKind.IO_ERROR, "the sector stayed unreadable after the fault was lifted")
    ctx.wait_live(ctx.controller())
    ctx.finish_loads(loads)


@scenario("hot-remove",
          "device_del of the controller under load, then device_add on the same root port: no "
          "hang, I/O fails cleanly while it is gone, the namespace returns, "
          "every completed write reads back intact and every failed one holds its old or new data",
          reset_bound=None,  # the controller is away for as long as the procedure keeps it
          host_side="QMP: device_del and device_add")
def hot_remove(ctx: Context) -> None:
    remove_and_restore(ctx, DeviceRemoval(ctx.vm.qmp, "nvme0",
                                          controller_device(ctx.vm.topology, 0), ctx.live_bound))


@scenario("vm-pause",
          f"QMP stop for longer than the I/O timeout (nvme_core.io_timeout={IO_TIMEOUT}) under "
          "load, then cont: the driver may reset, but nothing is lost",
          Topology.build(kernel_args=SHORT_IO_TIMEOUT), live_bound=120,
          host_side="QMP: the VM stopped")
def vm_pause(ctx: Context) -> None:
    loads = ctx.start_loads(runtime=20)
    ctx.sleep(ctx.rng.uniform(1.5, 3.0))
    pause = IO_TIMEOUT + ctx.rng.uniform(1.0, 4.0)
    with ctx.inject(MachineStop(ctx.vm.qmp)):  # lifting measures the stopped clock again
        ctx.sleep(pause)
    # The guest's timers catch up after cont: give the driver the time to act on the I/O that
    # looks timed out (its reset is the scenario's doing), then it must be live and stay so.
    ctx.sleep(IO_TIMEOUT + 2.0)
    ctx.wait_live(ctx.controller())
    ctx.finish_loads(loads)


@scenario("critical-warning",
          "the controller raises a SMART critical warning (QMP qom-set): the guest gets the "
          "asynchronous event, smart-log shows it, and I/O is unaffected",
          host_side="QMP: the controller's SMART warning set")
def critical_warning(ctx: Context) -> None:
    loads = ctx.start_loads(runtime=10)
    ctx.sleep(1.5)
    warning = 1 << ctx.rng.randrange(0, 3)  # spare, temperature or reliability
    ctx.inject(CriticalWarning(ctx.vm.qmp, "nvme0", warning))
    seen = 0
    for _ in range(50):
        out = ctx.guest.run("nvme smart-log /dev/nvme0 -o json", timeout=30, check=True).stdout
        seen = int(json.loads(out).get("critical_warning", 0))
        if seen & warning:
            break
        ctx.sleep(0.2)
    ctx.event("observed", f"critical_warning={seen}")
    if not seen & warning:
        ctx.fail(FailureKind.IO_ERROR, f"smart-log never showed critical warning {warning} "
                 f"(last {seen})")
    ctx.wait_live(ctx.controller())
    ctx.finish_loads(loads)
