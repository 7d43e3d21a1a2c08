"""Power under a busy driver: cut (what was flushed must still be there), or suspended and
resumed (the driver's suspend and resume paths: on QEMU's controller, which has no power
states of its own, a shutdown of the controller and a reset on resume)."""

from __future__ import annotations

from harness.faults.host import SuspendToIdle
from harness.machine.topology import Topology
from harness.recovery.context import Context
from harness.recovery.registry import scenario

HUNG_TASK_S = 10  # the guest reports a task blocked this long, with its stack


@scenario("power-loss",
          "a power cut (QEMU killed, or a target's --power-cmd) under a flushing load, in half "
          "of the seeds while a reset runs; the machine starts again on the same disks; every "
          "write completed before the last completed flush reads back intact",
          power_cut=True)
def power_loss(ctx: Context) -> None:
    saved = ctx.start_loads(runtime=120, size="128M", fsync=ctx.rng.randint(4, 32))
    ctx.start_loads(runtime=120, offset="512M", size="128M")  # dies with the power
    ctx.sleep(ctx.rng.uniform(2.0, 5.0))
    ctx.checkpoint(saved)  # verify state kept on the host, device flushed
    ctx.sleep(ctx.rng.uniform(0.2, 1.0))  # the second load keeps commands in flight
    if ctx.rng.random() < 0.5:
        ctrl = ctx.controller()
        ctx.act(f"echo 1 > {ctrl.sysfs}/reset_controller &",
                f"reset_controller {ctrl.name}, the power is cut while it runs")
    ctx.power_cut()
    for ctrl in ctx.controllers():
        ctx.wait_live(ctrl)
    for load in saved:
        ctx.verify(load)


@scenario("suspend-under-load",
          "the guest suspended to idle two or three times under the verifying load, held 1-3 s "
          "and woken by a key press (QMP send-key), in half of the rounds with a sysfs reset "
          "started as it suspends: the console must show every device suspended (else nothing "
          "was tested), the controller live after each round, writes complete again, no task "
          f"hangs (hung-task detector at {HUNG_TASK_S} s), no I/O error, every completed write "
          "intact",
          Topology.build(ssh_relay=False), ci=False,
          host_side="QMP: the wake key")
def suspend_under_load(ctx: Context) -> None:
    ctx.detect_hangs(HUNG_TASK_S)
    ctrl = ctx.controller()
    device = ctrl.pci_address
    rounds = [(ctx.rng.uniform(1.0, 2.5), ctx.rng.uniform(1.0, 3.0), ctx.rng.random() < 0.5)
              for _ in range(ctx.rng.randint(2, 3))]
    loads = ctx.start_loads(runtime=sum(gap + held + 10 for gap, held, _ in rounds) + 6)
    for gap, held, with_reset in rounds:
        ctx.sleep(gap)
        reset = f"{ctrl.sysfs}/reset_controller" if with_reset else ""
        with ctx.inject(SuspendToIdle(ctx.qemu_vm(), device, ctx.live_bound, reset)):
            ctx.sleep(held)
        ctx.wait_live(ctrl)
        ctx.writes_resume(loads)
    ctx.finish_loads(loads)
