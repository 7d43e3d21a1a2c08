"""PCI-level events the guest itself causes: function removal and bus rescan."""

from __future__ import annotations

from harness.faults.guest import PciRemoval
from harness.guest.nvme import PciFunction
from harness.recovery.context import Context
from harness.recovery.registry import scenario
from harness.recovery.removal import remove_and_restore


@scenario("pci-remove-rescan",
          "remove the controller's PCI function and rescan the bus under load: I/O to the "
          "removed device fails cleanly, nothing hangs, the device comes back live, "
          "every completed write reads back intact and every failed one holds its old or new data",
          reset_bound=None)  # the controller is away for as long as the procedure keeps it
def pci_remove_rescan(ctx: Context) -> None:
    pci = PciFunction(ctx.guest, ctx.controller().pci_address)
    remove_and_restore(ctx, PciRemoval(pci, ctx.live_bound))
