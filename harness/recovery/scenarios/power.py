"""The power goes while the driver is busy: what was flushed must still be there."""

from __future__ import annotations

from harness.recovery.context import Context
from harness.recovery.registry import scenario


@scenario("power-loss",
          "a power cut (QEMU killed) under a flushing load, in half of the seeds while a reset "
          "runs; the VM starts again on the same disks; every write completed before the last "
          "completed flush reads back intact")
def power_loss(ctx: Context) -> None:
    saved = ctx.start_loads(runtime=120, size="128M", fsync=ctx.rng.randint(4, 32))
    ctx.start_loads(runtime=120, offset="512M", size="128M")  # dies with the power
    ctx.sleep(ctx.rng.uniform(2.0, 5.0))
    ctx.checkpoint(saved)  # verify state kept on the host, device flushed
    ctx.sleep(ctx.rng.uniform(0.2, 1.0))  # the second load keeps commands in flight
    if ctx.rng.random() < 0.5:
        ctx.act("echo 1 > /sys/class/nvme/nvme0/reset_controller &",
                "reset_controller nvme0, the power is cut while it runs")
    ctx.power_cut()
    for ctrl in ctx.controllers():
        ctx.wait_live(ctrl)
    for load in saved:
        ctx.verify(load)
