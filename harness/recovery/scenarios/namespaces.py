"""Namespaces that come and go while the controller resets.

A reset ends by scanning the controller's namespaces; an attach or detach makes the
controller send a "namespace attribute changed" event, which starts a scan of its own. Both
walk the namespace list and freeze and unfreeze request queues: races between them are a
known source of hangs. These scenarios run with the guest's hung-task detector at 10 s, and a
task it reports fails the iteration at once with the task's stack (see ``Context.detect_hangs``).
Attach, detach and rescans are nvme-cli and sysfs in the guest, so they also run on a real
drive with namespace management.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.faults.guest import CommandLoop, GuestCommand
from harness.guest.nvme import Controller, namespace_id
from harness.machine.topology import Topology
from harness.reading.verdict import FailureKind
from harness.recovery.context import Context
from harness.recovery.registry import Soak, scenario

HUNG_TASK_S = 10  # the guest reports a task blocked this long
COMMAND_KILL_S = 20  # an nvme-cli command still running after this long has hung
CHURNED = 2  # SHARED's namespace that comes and goes
MIN_RESETS, MAX_RESETS = 4, 30  # per loop of namespace commands
NO_HANG = f"no command or task hangs (hung-task detector at {HUNG_TASK_S} s)"
# Two controllers in one subsystem: the load's namespace has two paths (native multipath),
# the churned one starts detached and is attached to both.
SHARED = Topology.build(controllers=2, subsystem=True, namespaces=["512M", "256M:detached"])
# The load runs on the churned namespace itself, the controller's only one (a target's
# --device, on a controller that manages namespaces).
CHURN_UNDER_LOAD = Topology.build(subsystem=True, namespaces=["512M"])


@dataclass(frozen=True)
class LoopResult:
    """What a guest loop of management commands did."""

    ok: int
    failed: int
    hung: str  # the command killed after COMMAND_KILL_S, or ""

    @classmethod
    def parse(cls, text: str) -> LoopResult:
        ok = failed = 0
        hung = ""
        for line in text.splitlines():
            if line.startswith("HUNG "):
                hung = line[5:]
            elif line.startswith("DONE "):
                ok, failed = (int(x) for x in line.split()[1:3])
        return cls(ok, failed, hung)


def command_loop(steps: list[tuple[str, float]]) -> list[str]:
    """The arguments of the guest's ``_loop_commands`` running each (command, pause after it)
    in turn. A command may fail (the controller may be resetting: that is its answer), but one
    still running after COMMAND_KILL_S is reported as hung and ends the loop. It prints
    "DONE ok failed" (:meth:`LoopResult.parse`)."""
    args = [str(COMMAND_KILL_S)]
    for command, pause in steps:
        args += [command, f"{pause:.2f}"]
    return args


def _run_loop_against_resets(ctx: Context, steps: list[tuple[str, float]],
                             what: str) -> LoopResult:
    """``steps`` in the background while seeded resets run; hung commands fail the iteration."""
    commands = CommandLoop(ctx.guest, f"{what}: {len(steps)} commands in a loop",
                           "_loop_commands", *command_loop(steps))
    ctx.inject(commands)
    loop = commands.job
    assert loop is not None
    # Resets go on for as long as the commands run: a race needs a reset starting inside a
    # command's scan, whenever in the loop that falls.
    resets = 0
    while resets < MIN_RESETS or (loop.running and resets < MAX_RESETS):
        ctx.resets([ctx.rng.uniform(0.3, 1.5)])
        resets += 1
    while loop.running:
        ctx.sleep(0.5)  # a hung task reported meanwhile ends the iteration here
    result = LoopResult.parse(loop.wait(10).stdout)
    ctx.event("loop_done", f"{what}: {result.ok} succeeded, {result.failed} failed")
    if result.hung:
        ctx.fail(FailureKind.HANG, f"{result.hung!r} was still running after "
                 f"{COMMAND_KILL_S}s while the controller was reset")
    if result.ok == 0:
        ctx.fail(FailureKind.NOT_RECOVERED, f"no command of the {what} loop succeeded: "
                 "nothing raced with the resets")
    return result


def _settled(ctx: Context, ctrl: Controller, nsid: int) -> str | None:
    """Once the commands stop, the guest's view must follow the controller's: a block device
    for the namespace exactly when the controller reports it attached; that device."""
    attached = nsid in ctrl.attached_nsids()
    device = None
    for _ in range(40):
        device = ctrl.block_device(nsid)
        if (device is not None) == attached:
            ctx.event("settled", f"namespace {nsid} " + (f"attached as {device}" if device
                                                          else "detached"))
            return device
        ctx.sleep(0.25)
    ctx.fail(FailureKind.NOT_RECOVERED, f"namespace {nsid} is {'' if attached else 'not '}attached "
             f"to {ctrl.name}, but the guest {'has no' if attached else 'still has a'} block "
             f"device for it{' (' + device + ')' if device else ''} 10s later: a scan was lost")


def _detect_hangs(ctx: Context) -> None:
    ctx.detect_hangs(HUNG_TASK_S)


def _churn_against_resets(ctx: Context) -> None:
    """The churned namespace attached and detached in a loop while seeded resets of either
    controller run; returns once both are live and the guest's view has settled."""
    ctrl = ctx.controller()
    both = ",".join(str(c.cntlid) for c in ctx.controllers())
    # from the namespace's state now: a soak's next loop starts where the last one ended
    first = 1 if CHURNED in ctrl.attached_nsids() else 0
    steps = []
    for i in range(first, first + ctx.rng.randint(8, 14)):
        make = ctrl.attach_command if i % 2 == 0 else ctrl.detach_command
        steps.append((make(CHURNED, both), ctx.rng.uniform(0.1, 0.8)))
    _run_loop_against_resets(ctx, steps, f"attach/detach of namespace {CHURNED}")
    for c in ctx.controllers():
        ctx.wait_live(c)
    _settled(ctx, ctrl, CHURNED)


@scenario("ns-churn-during-reset",
          "a namespace of a two-controller subsystem is attached and detached (nvme-cli) in "
          "a loop while sysfs resets of either controller run and the verifying load runs on "
          f"another namespace that stays attached: {NO_HANG}, the controllers end live, the "
          "churned namespace's block device matches its attachment, no I/O error, every "
          "completed write intact (throughput is not judged: nvme-cli, udev and the scans "
          "share the guest's CPU with the load for the whole loop)", SHARED, throughput=None,
          soak=Soak(_churn_against_resets, setup=_detect_hangs))
def ns_churn_during_reset(ctx: Context) -> None:
    _detect_hangs(ctx)
    loads = ctx.start_loads(runtime=30)
    _churn_against_resets(ctx)
    ctx.finish_loads(loads)


@scenario("rescan-during-reset",
          "rescan_controller (sysfs) and nvme ns-rescan in a loop while sysfs resets run under "
          f"the verifying load: {NO_HANG}, live, no I/O error, every completed write intact")
def rescan_during_reset(ctx: Context) -> None:
    ctx.detect_hangs(HUNG_TASK_S)
    ctrl = ctx.controller()
    commands = [f"echo 1 > {ctrl.sysfs}/rescan_controller", f"nvme ns-rescan /dev/{ctrl.name}"]
    steps = [(ctx.rng.choice(commands), ctx.rng.uniform(0.05, 0.5))
             for _ in range(ctx.rng.randint(10, 20))]
    loads = ctx.start_loads(runtime=30)
    _run_loop_against_resets(ctx, steps, "namespace rescans")
    ctx.wait_live(ctrl)
    ctx.finish_loads(loads)


@scenario("ns-churn-under-load",
          "the namespace under a load is detached (nvme-cli) and attached again, one to three "
          f"times: I/O to the detached namespace fails cleanly ({NO_HANG}), the namespace "
          "comes back, every completed write is intact and every failed one holds its old or new "
          "data", CHURN_UNDER_LOAD)
def ns_churn_under_load(ctx: Context) -> None:
    ctx.detect_hangs(HUNG_TASK_S)
    ctrl = ctx.controller()
    nsid = namespace_id(ctx.guest, ctx.namespace())
    for rnd in range(ctx.rng.randint(1, 3)):
        device = ctrl.block_device(nsid)
        if device is None:
            ctx.fail(FailureKind.NOT_RECOVERED, f"namespace {nsid} has no block device")
        # other data every round: a write lost in a later round cannot read back as the
        # same block an earlier round left there
        before = ctx.start_load(ctx.rng.uniform(3.0, 5.0), device, size="128M",
                                data_seed=ctx.seed * 4 + rnd)
        before.end()
        under = ctx.start_load(30, device, offset="256M", size="128M", transparent=False,
                               data_seed=ctx.seed * 4 + rnd + (1 << 32), inline_verify=False)
        ctx.loads.opaque.add(before.name)  # its device goes away; a salvage must not read it
        ctx.sleep(ctx.rng.uniform(0.5, 2.0))
        ctx.vm.tainted = True
        with ctx.inject(GuestCommand(ctx.guest, ctrl.detach_command(nsid),
                                     f"detach namespace {nsid} under load", COMMAND_KILL_S,
                                     undo=ctrl.attach_command(nsid))):
            ctx.finish_load(under, transparent=False)  # must end on its own, with errors
            _settled(ctx, ctrl, nsid)  # gone: the device found after the attach is a new one
            ctx.sleep(ctx.rng.uniform(0.2, 1.5))
        back = _settled(ctx, ctrl, nsid)
        assert back is not None  # attached: _settled saw its device
        ctx.vm.check_namespace(back)  # still the namespace the run was given
        before.moved_to(back)
        ctx.loads.opaque.discard(before.name)
        ctx.recovered(f"namespace {nsid} back as {back}")
        ctx.finish_load(before)
        under.moved_to(back)
        ctx.verify_through_fault(under)
