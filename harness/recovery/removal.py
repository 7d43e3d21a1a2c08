"""The removal procedure several scenarios share: a device taken away under a load and given
back, and the proof that what was written before and through the removal survived."""

from __future__ import annotations

from collections.abc import Callable

from harness.faults import Fault
from harness.recovery.context import Context


def remove_and_restore(ctx: Context, removal: Fault | Callable[[], Fault],
                       settle: Callable[[float], bool] | None = None) -> None:
    """The removal procedure: data written before and through the removal must survive.

    A first load writes and ends; a second one runs (on another region) while
    ``removal`` takes the device away, and must end on its own with clean errors; then
    lifting it brings the device back, the controller must be live with its namespace,
    and the verify-only passes check every write of the first load, and the second load
    as :meth:`Context.verify_through_fault` says. A ``removal`` given as a function is made
    just before it is applied (it draws from the seed then). ``settle(mark)`` runs once
    the removal is applied (``mark``: the kernel log's position just before): it waits
    for what the driver makes of it, and returns True where the device recovered by
    itself: the second load then must have seen no error either, and is verified like
    the first.
    """
    device = ctx.namespace()
    before = ctx.start_loads(runtime=ctx.rng.uniform(3.0, 5.0), size="128M")
    for load in before:
        load.end()
    # Writes only: once the device is going, a read of it returns 0 bytes, which fio's
    # inline verify misreads as the stale block in its buffer; its first error would end
    # the job before any write met the removal.
    under = ctx.start_loads(runtime=30, offset="512M", size="128M", inline_verify=False)
    # while the device is away, a failure's salvage must not judge what reads it
    ctx.loads.opaque |= {load.name for load in [*before, *under]}
    ctx.sleep(ctx.rng.uniform(1.0, 2.0))
    ctx.vm.tainted = True
    mark = ctx.log.mark() if settle is not None else 0.0
    if not isinstance(removal, Fault):
        removal = removal()
    ctx.inject(removal)
    recovered = settle is not None and settle(mark)
    if recovered:  # by itself: judged from here on as any recovery
        ctx.loads.opaque -= {load.name for load in under}
        ctx.wait_live(ctx.controller())
    ctx.finish_loads(under, transparent=recovered)
    ctx.sleep(ctx.rng.uniform(0.5, 2.0))
    ctx.lift(removal)
    ctx.wait_live(ctx.controller())
    ctx.guest.run(f"until [ -b {device} ]; do sleep 0.05; done", timeout=60)
    ctx.loads.opaque -= {load.name for load in before}
    ctx.finish_loads(before)
    if not recovered:
        for load in under:
            ctx.verify_through_fault(load)
