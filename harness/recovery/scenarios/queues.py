"""The number of hardware queues changed under I/O: the driver samples its ``write_queues``
and ``poll_queues`` parameters at each reset, and the reset then rebuilds the tag set with
another number of queues (``blk_mq_update_nr_hw_queues``), remapping every CPU while
interrupt-driven and polled requests are in flight. Guest-side only (sysfs). The two loads
share one namespace, each on its own half: the polled one goes to the poll queues, the other
to the default and read queues."""

from __future__ import annotations

import re

from harness.errors import HarnessError
from harness.faults.guest import ModuleParameters
from harness.guest.nvme import Controller, io_timeout
from harness.machine.topology import Topology
from harness.recovery.context import Context
from harness.recovery.registry import scenario
from harness.recovery.scenarios.timeouts import SHORT_IO_TIMEOUT

# The most of each the driver may use: it sizes its queue array once, at probe, for
# possible CPUs + write_queues + poll_queues, so the boot values are the ceiling.
MOST_WRITE, MOST_POLL = 2, 2
# "nvme nvme0: 2/1/1 default/read/poll queues": what each reset set up (since Linux 5.0)
QUEUES_LINE = re.compile(r"nvme (nvme\d+): (\d+)/(\d+)/(\d+) default/read/poll queues")


def queues_set_up(lines: list[str], ctrl: str) -> tuple[int, int, int] | None:
    """The last (default, read, poll) queue counts the driver reported for ``ctrl``."""
    found = None
    for line in lines:
        if (m := QUEUES_LINE.search(line)) is not None and m.group(1) == ctrl:
            found = (int(m.group(2)), int(m.group(3)), int(m.group(4)))
    return found


def reset_with(ctx: Context, ctrl: Controller, **params: int) -> tuple[int, int, int] | None:
    """The driver's ``params`` changed (put back after) and ``ctrl`` reset under whatever
    runs; returns the (default, read, poll) queues the reset reported setting up."""
    mark = ctx.log.mark()
    with ctx.inject(ModuleParameters(ctx.guest, "nvme", ctx.live_bound, **params)):
        ctx.reset(ctrl)
    got = queues_set_up(ctx.log.since(mark), ctrl.name)
    asked = " ".join(f"{name}={value}" for name, value in params.items())
    ctx.event("note", f"{ctrl.name}: {got} default/read/poll queues after {asked}")
    return got


@scenario("queue-count-under-load",
          "the driver's write_queues and poll_queues changed (seeded, 3-5 rounds, at least "
          "one poll queue kept) and the controller reset while a polled and an "
          "interrupt-driven load run: each reset rebuilds the tag set with another number "
          "of hardware queues, and must report the new counts, be live again, lose nothing "
          "and stall nothing",
          Topology.build(cpus=2, kernel_args=f"nvme.write_queues={MOST_WRITE} "
                                     f"nvme.poll_queues={MOST_POLL}"))
def queue_count_under_load(ctx: Context) -> None:
    ctrl = ctx.controller()
    # the boot's account, or blk-mq's where the log was not read from the boot (a target's)
    now = queues_set_up(ctx.log.since(0.0), ctrl.name) or \
        ctrl.queue_types(ctx.namespace_name())
    if now is None or now[2] == 0:
        raise HarnessError(f"{ctrl.name} reported no poll queue at boot ({now}): "
                           "nvme.poll_queues did not take effect")
    counts = [(w, p) for w in range(MOST_WRITE + 1) for p in range(1, MOST_POLL + 1)]
    rounds: list[tuple[int, int]] = []
    last = (MOST_WRITE, MOST_POLL)
    for _ in range(ctx.rng.randint(3, 5)):
        last = ctx.rng.choice([c for c in counts if c != last])
        rounds.append(last)
    gaps = [ctx.rng.uniform(1.0, 2.0) for _ in rounds]
    runtime = sum(gaps) + 3 * len(rounds) + 6
    loads = [ctx.start_load(runtime, polled=True, warm_up=False),
             ctx.start_load(runtime, offset="256M", warm_up=False)]
    ctx.warm_up(loads)
    for (write, poll), gap in zip(rounds, gaps, strict=True):
        ctx.sleep(gap)
        got = reset_with(ctx, ctrl, write_queues=write, poll_queues=poll)
        # The driver's own account: without it, the reset may not have changed anything
        if got is None or got[2] != poll or (got[1] > 0) != (write > 0):
            raise HarnessError(f"after write_queues={write} poll_queues={poll} and a reset, "
                               f"{ctrl.name} reported {got} default/read/poll queues: the "
                               "queue count did not change as asked, nothing was tested")
    ctx.finish_loads(loads)


@scenario("poll-queues-added-under-load",
          "a driver booted without poll queues (2 CPUs, a queue each) given one at runtime "
          "and reset under an interrupt-driven load (poll_queues=1, or 1, 0, 1), then the "
          "load runs past the I/O timeout: no CPU's I/O left on a queue without an "
          "interrupt (no timeout), live each time, nothing lost",
          Topology.build(cpus=2, kernel_args=SHORT_IO_TIMEOUT))
def poll_queues_added_under_load(ctx: Context) -> None:
    ctrl = ctx.controller()
    disk = ctx.namespace_name()
    booted = queues_set_up(ctx.log.since(0.0), ctrl.name) or ctrl.queue_types(disk)
    owned = ctrl.own_queues(disk)
    # The tag set is sized by the first reset: without read or poll queues it has one map,
    # and the queue that becomes the poll queue is CPU 1's own until something remaps it.
    if booted is None or booted[1:] != (0, 0) or len(owned) < 2:
        raise HarnessError(f"{ctrl.name} booted with {booted} default/read/poll queues, CPUs "
                           f"with their own queue: {sorted(owned)}; the scenario needs only "
                           "default queues, one per CPU, and would test nothing")
    polls = [1, 0, 1][:ctx.rng.choice((1, 3))]
    gaps = [ctx.rng.uniform(1.0, 2.0) for _ in polls]
    # what a request stranded by the last reset needs to time out, and the driver to say so
    # (a machine's own timeout where the boot's short one could not be set)
    after = io_timeout(ctx.guest) + 3.0
    load = ctx.start_load(sum(gaps) + 3 * len(polls) + after + 6)
    for poll, gap in zip(polls, gaps, strict=True):
        ctx.sleep(gap)
        got = reset_with(ctx, ctrl, poll_queues=poll)
        # A driver may decline a poll queue its tag set has no map for; it must set up
        # its queues again either way, or the reset changed nothing.
        if got is None or got[2] not in (0, poll):
            raise HarnessError(f"after poll_queues={poll} and a reset, {ctrl.name} reported "
                               f"{got} default/read/poll queues: nothing was tested")
    ctx.sleep(after)
    ctx.finish_loads([load])
