"""CPUs that go away under I/O: the queues they own must be drained, not stranded.

With one I/O queue per CPU, a queue whose only CPU goes offline loses its interrupt (the
kernel shuts managed interrupts down with their CPUs), so blk-mq stops new requests on it
and waits for those in flight first. Guest-side only (sysfs), so it runs on a real machine.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.faults.guest import CpuOffline
from harness.machine.topology import Topology
from harness.recovery.context import Context
from harness.recovery.registry import scenario

CPU = 1  # CPU 0 cannot go offline on x86
HUNG_TASK_S = 10  # the guest reports a task blocked this long, with its stack


@scenario("cpu-offline-under-load",
          f"CPU {CPU}, the only CPU of one I/O queue, taken offline and back online (sysfs) "
          "two to four times with the verifying load running on it, in half of the rounds "
          "while a sysfs reset runs: the requests on its queue complete or are re-issued, the "
          "controller is live after each round, no task hangs (hung-task detector at "
          f"{HUNG_TASK_S} s), no I/O error, every completed write intact",
          Topology.build(cpus=2))
def cpu_offline_under_load(ctx: Context) -> None:
    ctx.detect_hangs(HUNG_TASK_S)  # CPU hotplug waits for the queues: a stuck one hangs it
    ctrl = ctx.controller("nvme0")
    queue = ctrl.queue_of_cpu("nvme0n1", CPU)
    if queue is None:
        raise HarnessError(f"no I/O queue of nvme0n1 serves CPU {CPU} alone: the scenario "
                           "would not take a queue's only CPU away")
    rounds = [(ctx.rng.uniform(1.0, 2.5), ctx.rng.uniform(1.0, 3.0), ctx.rng.random() < 0.5)
              for _ in range(ctx.rng.randint(2, 4))]
    loads = ctx.start_loads(runtime=sum(gap + away + 3 for gap, away, _ in rounds) + 6)
    for i, (gap, away, during_reset) in enumerate(rounds):
        # The load onto the CPU about to go, so that its queue has requests in flight then
        # (the scheduler left it elsewhere on 5.10); the kernel moves it off that CPU again.
        ctx.guest.run(f"for p in $(pgrep -x fio); do taskset -a -p -c {CPU} $p >/dev/null; "
                      "done", timeout=30, check=True)
        completions = ctrl.interrupts(queue) if i == 0 else 0
        ctx.sleep(gap)
        # Before any fault, the queue must carry the load (after one, a queue that completes
        # nothing is the driver's stall, which the stall and stability judges report)
        if i == 0 and ctrl.interrupts(queue) == completions:
            raise HarnessError(f"{queue}, CPU {CPU}'s queue, completed nothing in {gap:.1f}s "
                               f"of load on CPU {CPU}: the scenario would test nothing")
        if during_reset:
            ctx.act(f"echo 1 > {ctrl.sysfs}/reset_controller &",
                    f"reset_controller {ctrl.name}, CPU {CPU} going offline while it runs")
        with ctx.inject(CpuOffline(ctx.guest, CPU, ctx.live_bound)):
            ctx.sleep(away)
        ctx.wait_live(ctrl)
    ctx.finish_loads(loads)
