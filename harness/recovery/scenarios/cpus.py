"""CPUs that go away under I/O: the queues they own must be drained, not stranded.

With one I/O queue per CPU, a queue whose only CPU goes offline loses its interrupt (the
kernel shuts managed interrupts down with their CPUs), so blk-mq stops new requests on it
and waits for those in flight first. The CPU and the queue are guest-side (sysfs). By the time
blk-mq drains the queue, the scheduler has moved the load off that CPU and its last requests
have long completed: on QEMU the namespace's backend is throttled while the CPU goes, so that
requests are still in flight on its queue then, and their completions arrive during the drain.
On a real machine the drive is not slowed: what was in flight is noted in the timeline.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.faults.guest import CpuOffline
from harness.faults.host import Throttle
from harness.machine.topology import Topology
from harness.recovery.context import Context
from harness.recovery.registry import scenario

# While the CPU goes offline: requests complete slowly enough to be in flight when its queue
# is drained (the load keeps 16 in flight), fast enough that the drain ends in about a second
DRAIN_IOPS = 20
HUNG_TASK_S = 10  # the guest reports a task blocked this long, with its stack


SUMMARY = ("{what}, taken offline and back online (sysfs) two to four times with the "
           "verifying load running on it, in half of the rounds while a sysfs reset runs: the "
           "requests on its queue complete or are re-issued, the controller is live after each "
           "round, no task hangs (hung-task detector at {hung} s), no I/O error, every "
           "completed write intact")


def _cpu_offline_under_load(ctx: Context) -> None:
    ctx.detect_hangs(HUNG_TASK_S)  # CPU hotplug waits for the queues: a stuck one hangs it
    ctrl = ctx.controller()
    disk = ctx.namespace_name()
    queues = ctrl.own_queues(disk)
    # CPU 0 cannot go offline on x86; the first CPUs the scenario's topology names: a real
    # machine's others are left alone
    cpus = [cpu for cpu in range(1, ctx.vm.topology.cpus) if cpu in queues]
    if not cpus:
        raise HarnessError(f"no I/O queue of {disk} serves one of CPUs 1-"
                           f"{ctx.vm.topology.cpus - 1} alone: the scenario would not take a "
                           "queue's only CPU away")
    rounds = [(ctx.rng.uniform(1.0, 2.5), ctx.rng.uniform(1.0, 3.0), ctx.rng.random() < 0.5)
              for _ in range(ctx.rng.randint(2, 4))]
    # which CPU goes in each round (drawn after the rounds: with one CPU to take, no draw)
    chosen = [cpus[0] if len(cpus) == 1 else ctx.rng.choice(cpus) for _ in rounds]
    loads = ctx.start_loads(runtime=sum(gap + away + 3 for gap, away, _ in rounds) + 6)
    for i, ((gap, away, during_reset), cpu) in enumerate(zip(rounds, chosen, strict=True)):
        queue = queues[cpu]
        # The load onto the CPU about to go, so that its queue has requests in flight then
        # (the scheduler left it elsewhere on 5.10); the kernel moves it off that CPU again.
        ctx.guest.run(f"for p in $(pgrep -x fio); do taskset -a -p -c {cpu} $p >/dev/null; "
                      "done", timeout=30, check=True)
        completions = ctrl.interrupts(queue) if i == 0 else 0
        ctx.sleep(gap)
        # Before any fault, the queue must carry the load (after one, a queue that completes
        # nothing is the driver's stall, which the stall and stability judges report)
        if i == 0 and ctrl.interrupts(queue) == completions:
            raise HarnessError(f"{queue}, CPU {cpu}'s queue, completed nothing in {gap:.1f}s "
                               f"of load on CPU {cpu}: the scenario would test nothing")
        offline = CpuOffline(ctx.guest, cpu, ctx.live_bound)
        if during_reset:
            ctx.act(f"echo 1 > {ctrl.sysfs}/reset_controller &",
                    f"reset_controller {ctrl.name}, CPU {cpu} going offline while it runs")
            ctx.inject(offline)
        elif ctx.vm.has_host_side:
            with ctx.inject(Throttle(ctx.vm.qmp, ctx.vm.namespace(0, 1), iops=DRAIN_IOPS)):
                ctx.sleep(0.5)  # the load's requests pile up in flight
                ctx.event("note", f"in flight on {queue}: {ctrl.in_flight(disk, queue)}")
                ctx.inject(offline)
        else:
            ctx.event("note", f"in flight on {queue}: {ctrl.in_flight(disk, queue)}")
            ctx.inject(offline)
        ctx.sleep(away)
        ctx.lift(offline)
        ctx.wait_live(ctrl)
    ctx.finish_loads(loads)


scenario("cpu-offline-under-load",
         SUMMARY.format(what="CPU 1, the only CPU of one I/O queue", hung=HUNG_TASK_S),
         Topology.build(cpus=2))(_cpu_offline_under_load)
scenario("cpu-offline-under-load-4cpu",
         SUMMARY.format(what="on 4 vCPUs, a seeded one of CPUs 1-3 (each its queue's only "
                             "CPU) per round", hung=HUNG_TASK_S),
         Topology.build(cpus=4), ci=False)(_cpu_offline_under_load)
