"""PCI-level events the guest itself causes: function removal and bus rescan."""

from __future__ import annotations

from harness.scenario import Context, scenario


@scenario("pci-remove-rescan",
          "remove the controller's PCI function and rescan the bus under load: I/O to the "
          "removed device fails cleanly, nothing hangs, the device comes back live, and every "
          "write completed before the removal is intact")
def pci_remove_rescan(ctx: Context) -> None:
    before = ctx.start_loads(runtime=ctx.rng.uniform(3.0, 5.0), size="128M")
    for load in before:  # its writes are the ones that must survive
        load.wait(timeout=120)
    under = ctx.start_loads(runtime=30, offset="512M", size="128M")
    ctx.sleep(ctx.rng.uniform(1.0, 2.0))
    ctrl = ctx.controller("nvme0")
    address = ctrl.pci_address
    ctx.vm.tainted = True
    ctx.act(f"echo 1 > /sys/bus/pci/devices/{address}/remove", f"PCI remove of {address}")
    ctx.finish_loads(under, transparent=False)  # ends with clean errors, no hang
    ctx.sleep(ctx.rng.uniform(0.5, 2.0))
    ctx.act("echo 1 > /sys/bus/pci/rescan", "PCI bus rescan")
    ctx.wait_live(ctrl)
    ctx.guest.run("until [ -b /dev/nvme0n1 ]; do sleep 0.05; done", timeout=60)
    ctx.finish_loads(before)
