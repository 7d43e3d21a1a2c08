"""PCI-level events the guest itself causes: function removal and bus rescan."""

from __future__ import annotations

from harness.scenario import Context, scenario


@scenario("pci-remove-rescan",
          "remove the controller's PCI function and rescan the bus under load: I/O to the "
          "removed device fails cleanly, nothing hangs, the device comes back live, and every "
          "write completed before the removal is intact")
def pci_remove_rescan(ctx: Context) -> None:
    loads = ctx.start_loads(runtime=30)
    ctx.sleep(ctx.rng.uniform(2.0, 4.0))
    ctrl = ctx.controller("nvme0")
    address = ctrl.pci_address
    ctx.vm.tainted = True
    ctx.act(f"echo 1 > /sys/bus/pci/devices/{address}/remove", f"PCI remove of {address}")
    for load in loads:
        load.wait(timeout=60)
    ctx.sleep(ctx.rng.uniform(0.5, 2.0))
    ctx.act("echo 1 > /sys/bus/pci/rescan", "PCI bus rescan")
    ctx.wait_live(ctrl)
    ctx.guest.run("until [ -b /dev/nvme0n1 ]; do sleep 0.05; done", timeout=60)
    ctx.finish_loads(loads, transparent=False)
