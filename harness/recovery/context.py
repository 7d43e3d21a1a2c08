"""What a scenario works with: the steps of a recovery procedure, as a kernel engineer does
them by hand (start the verifying load, inject, wait for recovery, verify). The mechanics
behind them are collaborators: the loads (:mod:`.loads`), the proof of no lost write
(:mod:`.verification`), the kernel-log watch (:mod:`.logwatch`), the guest's monitors
(:mod:`.monitors`), the throughput judge; every failure is classified (:class:`FailureKind`)
and carries its evidence.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, NoReturn

from harness.errors import CommandTimeout, GuestHang, HarnessError
from harness.faults import Fault, FaultRefused, FaultStuck
from harness.faults.guest import GuestCommand, SysfsReset
from harness.faults.host import PowerCut
from harness.guest import fio
from harness.guest.guestclock import GuestClock
from harness.guest.nvme import (
    Controller,
    NotRecovered,
    RequeueTrace,
    ResetRefused,
    held_by_driver,
    io_timeout,
    nvme_io_stalled,
)
from harness.guest.ssh import Guest
from harness.guest.tasks import blocked_tasks
from harness.machine.hostcpu import CpuSampler
from harness.machine.system import System
from harness.machine.vm import VM
from harness.reading import blocked, kmsg
from harness.reading.throughput import Criterion, GuestBusy
from harness.reading.timeline import Timeline, requeue_burst
from harness.reading.verdict import Failure, FailureKind
from harness.recovery.failures import ScenarioFailed, stop
from harness.recovery.loads import Loads
from harness.recovery.logwatch import KernelLogWatch
from harness.recovery.monitors import Monitors
from harness.recovery.throughputjudge import ThroughputJudge
from harness.recovery.verification import Verification

# After every recovery, half the IOPS of before the fault within 5 s: generous under TCG (a
# second's IOPS varies by a third there), yet a driver that limps after a reset fails it.
THROUGHPUT = Criterion(share=0.5, within=5.0)
# A reset takes the stock driver 30-250 ms here under TCG (a hot-removed controller's return
# about 1.2 s): seconds out of live is a stalled reset, whatever it logged. Likewise seconds
# after live with a load waiting and no write completed: a stalled queue, not a slow host.
RESET_BOUND_S = 3.0
RESUME_BOUND_S = 5.0
WRITES_RESUME_S = 20.0  # a load with no completed write this long after a recovery is stuck
# Stuck writes: how long past its I/O timeout the driver has to report it, and the longest
# timeout waited for (a target's may be set to hours)
IO_TIMEOUT_SLACK_S, MAX_IO_TIMEOUT_WAIT_S = 3.0, 60


class Held(NamedTuple):
    """Requests the driver held, dispatched and not completed, when a hang was found
    (blk-mq's debugfs; None: not known), and the evidence's line about them."""

    requests: int | None
    line: str


CLOCK_LINE = "nvmeh: kernel log clock"  # logged to tell the kernel log's clock
# Kernel log lines that name the driver but are not its own (ERE): a stack frame or a task's
# heading in a hung-task report or SysRq dump, and the harness's own marks
NOT_THE_DRIVERS = r"\+0x[0-9a-f]+/0x[0-9a-f]+|\] (Workqueue|task):|\] nvmeh: "
WARM_UP_S = 2.0  # a load runs this long before any fault: a whole second of baseline IOPS

__all__ = ["Context", "ScenarioFailed"]


@dataclass
class Context:
    """The steps a scenario calls, each recorded on the timeline on the guest's clock."""

    vm: System  # a VM or a real machine
    seed: int
    artifacts: Path
    live_bound: float
    throughput: Criterion | None = field(default_factory=lambda: THROUGHPUT)  # None: not judged
    rng: random.Random = field(init=False)
    requeue_trace: RequeueTrace = field(init=False)  # what resets put back (the trace)
    timeline: Timeline = field(default_factory=Timeline)
    failures: list[Failure] = field(default_factory=list)
    loads: Loads = field(default_factory=Loads)
    on_event: Callable[[str, str], None] | None = None  # (kind, detail): progress display
    cpu: CpuSampler | None = None  # the VM's host CPU, where a host runs it
    # The guest's clock minus its kernel log's, where measured (measure_kernel_clock)
    kernel_clock: float | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.requeue_trace = RequeueTrace(self.vm.guest)
        self.monitors = Monitors([(name, self.vm.watched_namespace(name))
                                  for name in self.vm.controller_names()])
        self.throughput_judge = ThroughputJudge(
            self.throughput, self.timeline, lambda: self.cpu, self._guest_busy)
        self.log = KernelLogWatch(
            lambda: self.guest.run("dmesg", timeout=30).stdout,
            lambda: self.guest.run("dmesg | tail -n 1", timeout=30).stdout,
            self.requeue_trace.read)
        self.verification = Verification(self.loads, self.failures, self.timeline,
                                         self.event, self.check_stable, self.driver_log)
        self.clock = GuestClock(
            lambda: float(self.guest.run("echo $EPOCHREALTIME", check=True).stdout))

    def _guest_busy(self) -> GuestBusy | None:
        cpu = self.monitors.guest_cpu
        return cpu.so_far() if cpu is not None else None

    def resync_clock(self) -> None:
        """Measure the guest's clock again: it stood still while the VM was stopped."""
        self.clock.resync()
        if self.cpu is not None:
            self.cpu.rewind(self.now())

    def now(self) -> float:
        """The guest's clock, estimated on the host: every timeline event uses it."""
        return self.clock.now()

    def event(self, kind: str, detail: str = "", at: float | None = None) -> None:
        if kind in ("fault", "lifted"):
            raise ValueError(f"a {kind!r} event is recorded by Context.inject, not by hand")
        self._add(kind, detail, at)

    def _add(self, kind: str, detail: str, at: float | None) -> None:
        self.timeline.add(kind, detail, self.now() if at is None else at)
        if self.on_event is not None:
            self.on_event(kind, detail)

    def inject(self, fault: Fault) -> Injected:
        """Apply ``fault`` and record it on the guest's clock (its own stamp where it took
        one, else the moment it was applied); ``with ctx.inject(fault):`` lifts it on leaving.
        A fault the driver refuses is its failure (NOT_RECOVERED), one that never completes
        a hang."""
        started = self.now()
        try:
            fault.apply()
        except BaseException as exc:  # recorded all the same: the timeline shows what failed
            self._add("fault", fault.describe(), started)
            if isinstance(exc, FaultRefused):
                self.fail(FailureKind.NOT_RECOVERED, f"{fault.describe()} failed: {exc}",
                          code="fault-refused")
            if isinstance(exc, FaultStuck):
                self.fail(FailureKind.HANG, str(exc))
            raise
        self._add("fault", fault.describe(), started if fault.applied_at is None
                  else fault.applied_at)
        if fault.silences is not None:
            self._add("device_silenced", fault.silences, fault.silenced_at)
        return Injected(self, fault)

    def lift(self, fault: Fault) -> None:
        """Undo ``fault`` and record its lifting (recovery times count from here on)."""
        refused: FaultRefused | None = None
        try:
            fault.lift()
        except FaultRefused as exc:
            refused = exc
        if fault.asleep is not None:  # on the clock as it ran before the machine slept
            self._add("asleep", fault.describe(), fault.asleep[0] + self.clock.offset)
            self._add("awake", fault.describe(), fault.asleep[1] + self.clock.offset)
        if fault.stops_clock and refused is None:
            self.resync_clock()
        self._add("lifted", fault.describe(), None)
        if refused is not None:
            self.fail(FailureKind.NOT_RECOVERED, f"lifting {fault.describe()} failed: "
                      f"{refused}", code="fault-refused")

    def act(self, command: str, what: str, timeout: float | None = None) -> str:
        """Run a fault-injecting guest command, timed on the guest's clock; its stdout."""
        fault = GuestCommand(self.guest, command, what, timeout or self.live_bound)
        self.inject(fault)
        return fault.output

    @property
    def guest(self) -> Guest:
        return self.vm.guest

    def qemu_vm(self) -> VM:
        """The system under test as the QEMU VM a host-side fault needs."""
        if not isinstance(self.vm, VM):
            raise HarnessError("this step needs a QEMU VM, not a real machine: the scenario "
                               "should have declared its host side and been skipped")
        return self.vm

    def controller(self, name: str | None = None) -> Controller:
        """A controller by its name; unnamed, the (first) one under test."""
        return Controller(self.guest, name or self.vm.controller_names()[0])

    def namespace(self) -> str:
        """The block device of the (first) namespace under test: ``/dev/nvme0n1`` in a VM."""
        return self.namespaces()[0]

    def namespace_name(self) -> str:
        """The same without ``/dev/``: its name in sysfs and debugfs."""
        return self.namespace().removeprefix("/dev/")

    def fail(self, kind: FailureKind, message: str, evidence: str = "", code: str = "",
             requeued: int = 0, held: int | None = None) -> NoReturn:
        if kind in (FailureKind.NOT_RECOVERED, FailureKind.HANG):
            evidence = "\n".join(filter(None, (evidence.strip(), self.driver_log())))
        stop(self.failures, Failure(kind, message, evidence, code, requeued, held))

    def driver_log(self, lines: int = 15) -> str:
        """The NVMe driver's latest kernel log lines: what it said while it failed to recover
        (not the stack frames of hung-task reports and blocked-task dumps, which are
        evidence of their own)."""
        try:
            out = self.guest.run(f"dmesg | grep -E 'nvme|blk_update_request|I/O error' | "
                                 f"grep -v -E '{NOT_THE_DRIVERS}' | tail -n {lines}",
                                 timeout=10).stdout
        except HarnessError:
            console = self.vm.console
            out = console.tail(lines) if console else ""
        return f"kernel log:\n{out.rstrip()}" if out.strip() else ""

    def sleep(self, seconds: float) -> None:
        """Wait, but notice a guest panic, a hung task or a dead QEMU at once."""
        console = self.vm.console
        if console is not None:
            console.wait_for(lambda: console.panic is not None or self.vm.hang_pending(),
                             seconds)
        else:
            time.sleep(seconds)
        self.vm.check_alive()
        if (hang := self.vm.hang_report()) is not None:
            raise GuestHang(*hang)

    def detect_hangs(self, seconds: int = 10) -> None:
        """Make the guest's hung-task detector report a task blocked for ``seconds`` (the
        kernel's default is minutes), with its stack trace on the console (loglevel 7: the
        trace is printed at KERN_INFO); the iteration then fails at once (HANG)."""
        self.guest.run(f"sysctl -q -w kernel.hung_task_timeout_secs={seconds} "
                       "kernel.hung_task_warnings=-1 && dmesg -n 7", check=True, timeout=30)
        self.event("hang_detection", f"hung tasks reported after {seconds}s")

    def namespaces(self) -> list[str]:
        """Block devices of the namespaces attached at start, as the guest names them."""
        return self.vm.block_devices()

    def controllers(self) -> list[Controller]:
        return [self.controller(name) for name in self.vm.controller_names()]

    def start_loads(self, runtime: float, offset: str = "0", size: str = "256M",
                    fsync: int = 0, polled: bool = False, inline_verify: bool = True,
                    data_seed: int | None = None) -> list[fio.VerifyLoad]:
        """One verifying load per namespace (each job of it writes ``size`` from ``offset``;
        ``fsync=N``: a flush after every N writes; ``polled``: io_uring HIPRI), warmed up.
        ``inline_verify=False``: writes only, for loads whose device is taken away under
        them (see :meth:`remove_and_restore`)."""
        loads = [self.start_load(runtime, dev, offset, size, fsync, polled, warm_up=False,
                                 data_seed=data_seed, inline_verify=inline_verify)
                 for dev in self.namespaces()]
        self.warm_up(loads)
        return loads

    def warm_up(self, loads: list[fio.VerifyLoad]) -> None:
        """Let ``loads`` run long enough to measure the IOPS a recovery must come back to."""
        started = max(self.loads.started_at(ld) for ld in loads)
        self.sleep(max(0.0, started + WARM_UP_S - self.now()))

    def finish_loads(self, loads: list[fio.VerifyLoad], transparent: bool = True,
                     now: bool = False, verify: bool = True) -> None:
        for load in loads:
            self.finish_load(load, transparent, now, verify)

    def start_load(self, runtime: float, device: str | None = None, offset: str = "0",
                   size: str = "256M", fsync: int = 0, polled: bool = False,
                   warm_up: bool = True, transparent: bool = True,
                   data_seed: int | None = None, inline_verify: bool = True) -> fio.VerifyLoad:
        """A verifying load on ``device``, warmed up (see :meth:`warm_up`) unless told not
        to (several loads are warmed up together). ``transparent=False``: it runs while its
        device is taken away, so neither its errors nor its data are judged (see
        :meth:`finish_load`). ``data_seed``: what fio seeds its offsets and data with (the
        iteration's seed unless given)."""
        device = device or self.namespace()
        load = fio.VerifyLoad(self.guest, device,
                              seed=self.seed if data_seed is None else data_seed,
                              runtime=runtime,
                              name=f"load{len(self.loads)}", offset=offset, size=size,
                              fsync=fsync, polled=polled,
                              backlog=fio.INLINE_VERIFY_BACKLOG if inline_verify else 0,
                              headroom=self.live_bound + 30 + (
                                  self.throughput.within + self.throughput.max_extension
                                  if self.throughput else 0.0))
        self.loads.add(load, transparent)
        try:
            load.start()
        except fio.LoadStalled as exc:
            self.fail(FailureKind.HANG, str(exc), code="load-stalled")
        self.loads.flowing(load, self.now())
        self.event("load_started", f"{load.name} {device}")
        if warm_up:
            self.warm_up([load])
        return load

    def reset(self, ctrl: Controller) -> float:
        """A sysfs reset under whatever runs; returns the seconds until ``live`` again."""
        fault = SysfsReset(ctrl, self.live_bound)
        try:
            self.inject(fault)
        except NotRecovered as exc:
            self.not_recovered(exc)
        except ResetRefused as exc:
            self.fail(FailureKind.NOT_RECOVERED, str(exc), code="reset-refused")
        assert fault.applied_at is not None and fault.live_at is not None
        self.recovered(f"{ctrl.name} live", at=fault.live_at)
        return fault.live_at - fault.applied_at

    def reset_any(self) -> None:
        """A sysfs reset of a (seeded) random controller."""
        self.reset(self.rng.choice(self.controllers()))

    def resets(self, gaps: list[float]) -> None:
        """A sysfs reset of a (seeded) random controller, then a gap, for each gap."""
        for gap in gaps:
            self.reset_any()
            self.sleep(gap)

    def wait_live(self, ctrl: Controller) -> None:
        """Wait (up to the scenario's bound) for ``ctrl`` to be live; a failure if it is not."""
        try:
            samples = ctrl.wait_state("live", timeout=self.live_bound)
        except NotRecovered as exc:
            self.not_recovered(exc)
        self.recovered(f"{ctrl.name} live", at=samples[-1].at if samples else None)

    def writes_resume(self, loads: list[fio.VerifyLoad], within: float = WRITES_RESUME_S) -> None:
        """After a recovery the running loads must complete writes again: a driver that
        reports recovered with its queues stopped is a hang now, not when the load's end
        times out (how soon they resumed is judged afterwards, from the timeline)."""
        for load in loads:
            if not load.writes_resume(within):
                waiting = self.blocked_tasks()
                held = self.await_io_timeouts()
                requeued = self.requeued_recently()
                stuck = (f"{load.name}: no write completed within {within:g}s of the "
                         f"recovery, the load still running{kmsg.requeued_note(requeued)}")
                self.fail(FailureKind.HANG, "\n".join(filter(None, [stuck, waiting.summary])),
                          kmsg.requeued_evidence(requeued, held.line, waiting.text),
                          code="io-stuck", requeued=len(requeued), held=held.requests)

    def await_io_timeouts(self, after_hang: bool = False) -> Held:
        """Writes are stuck: how many requests the driver holds (blk-mq's debugfs), and if
        any, wait until its I/O timeout has passed since the last recovery (or it reports a
        timeout earlier), so that its own account of them is in the evidence: submitted and
        never completed. ``after_hang``: a hung task was reported, and the writes may still
        complete: wait only if no NVMe disk completes anything meanwhile, and through the
        further reports the hung-task detector makes. Returns what it found."""
        with self.guest.uninterrupted() if after_hang else contextlib.nullcontext():
            try:
                held = held_by_driver(self.guest)
                if held == 0:  # stopped queues: nothing can time out
                    return Held(0, "blk-mq: no request with the driver (every NVMe queue's "
                                "busy list empty)")
                if after_hang and not nvme_io_stalled(self.guest):
                    return Held(held, "the NVMe disks still complete I/O")
                timeout = io_timeout(self.guest)
                if timeout <= MAX_IO_TIMEOUT_WAIT_S:
                    since = self.log.stable_from or 0.0
                    deadline = time.monotonic() + timeout + IO_TIMEOUT_SLACK_S - (
                        self.log.mark() - since)
                    while (time.monotonic() < deadline
                           and not kmsg.io_timeouts(self.log.read_log(), since)):
                        if after_hang:  # a panic or QEMU's death still ends the wait
                            time.sleep(0.5)
                            self.vm.check_alive()
                        else:
                            self.sleep(0.5)
            except (HarnessError, ValueError):  # the guest may be gone, or hung
                return Held(None, "")
        return Held(held, f"blk-mq: {held} request(s) with the driver, not completed"
                    if held else "")

    def blocked_tasks(self) -> blocked.Dump:
        """Who in the guest waits, and where (SysRq), for the evidence of a hang: the hung-task
        detector misses a worker that sleeps in a loop, often the one everything waits for.
        None if the guest cannot tell."""
        with self.guest.uninterrupted():
            try:
                return blocked_tasks(self.guest, every_task=isinstance(self.vm, VM))
            except HarnessError:  # the guest may be gone, or hung
                return blocked.Dump()

    def requeued_recently(self, since_recovery: bool = False) -> list[kmsg.Requeue]:
        """What the reset of the last recovery and any since put back (``since_recovery``:
        only those since), none if the guest cannot tell: requests a reset requeued and then
        lost stall everything behind them."""
        try:
            return (self.log.requeued_since_recovery() if since_recovery
                    else self.log.requeued_by_recent_resets())
        except HarnessError:  # the guest may be gone with its controller, or hung (its
            return []         # hung-task report still comes out among the oopses)

    def not_recovered(self, exc: NotRecovered) -> NoReturn:
        """A controller that did not come back, and what the reset had requeued: a reset
        that waits for requeued requests it lost never goes live."""
        requeued = self.requeued_recently(since_recovery=True)
        waiting = self.blocked_tasks()
        self.fail(FailureKind.NOT_RECOVERED,
                  "\n".join(filter(None, [str(exc) + kmsg.requeued_note(requeued),
                                          waiting.summary])),
                  kmsg.requeued_evidence(requeued, exc.detail, waiting.text),
                  code="not-live", requeued=len(requeued))

    def driver_reacts(self, ctrl: Controller, within: float, since: float) -> None:
        """Wait for the driver to take ``ctrl`` out of ``live`` (its reaction to a fault it
        must notice by itself), or find in the kernel log (after ``since``) that it already
        reset it; neither within ``within`` seconds is a hang."""
        if self.log.reset_logged(since):  # it already did, and may be live again
            return
        try:
            ctrl.wait_not("live", timeout=within)
        except CommandTimeout:
            if self.log.reset_logged(since):
                return
            # Nothing is stranded where no load runs: a load that stopped says why itself
            for load in self.loads.stopped():
                self.verification.judge(load.wait(30))
            if not self.loads.any_running:
                raise HarnessError(f"{ctrl.name} stayed live with a silent device, but no "
                                   "load was running to strand commands: nothing was "
                                   "tested") from None
            self.fail(FailureKind.HANG, f"{ctrl.name} stayed live for {within:g}s with a "
                      "silent device: the driver never acted on its stranded commands")

    def recovered(self, detail: str, at: float | None = None) -> None:
        """Record a recovery; the kernel log from here on must show no further trouble."""
        at = self.now() if at is None else at
        self.event("recovered", detail, at)
        self.log.recovered(None if self.kernel_clock is None else at - self.kernel_clock)

    def measure_kernel_clock(self) -> None:
        """Measure how far the guest's clock is ahead of its kernel log's, so that recoveries
        are marked in the log without reading it (a soak's hundreds of them: a ``dmesg`` takes
        half a second under TCG). A line logged, the guest's clock read at once after it: the
        line's stamp on the one clock, the reading on the other. Measured again at each of a
        soak's checkpoints, so the two clocks cannot drift apart for long."""
        out = self.guest.run(f"echo {CLOCK_LINE} > /dev/kmsg && echo $EPOCHREALTIME && "
                             f"dmesg | grep -F '{CLOCK_LINE}' | tail -n 1",
                             check=True, timeout=30).stdout.split("\n")
        stamp = kmsg.stamp(out[1]) if len(out) > 1 else None
        if stamp is None:
            raise HarnessError(f"the guest's kernel log did not show the line just logged: "
                               f"{out!r}")
        self.kernel_clock = float(out[0]) - stamp

    def check_stable(self, since: float | None = None) -> None:
        """After the last recovery: no I/O timeout, abort, controller reset or removal that
        the scenario did not cause itself (it caused none after recovering). ``since`` (a
        kernel log mark): none after that, for faults that log no such line themselves."""
        found = self.log.instability(since)
        if found is not None:
            self.fail(FailureKind.UNSTABLE, found.message, found.evidence,
                      requeued=len(found.requeued))

    def checkpoint(self, loads: list[fio.VerifyLoad]) -> None:
        """Stop ``loads`` with their completed writes flushed and their verify state kept on
        the host (see :meth:`fio.VerifyLoad.checkpoint`); their results are judged now."""
        for load in loads:
            result = load.checkpoint(self.artifacts / load.name)
            self.event("flushed", f"{load.name}: state saved, {load.params['FILENAME']} "
                       "flushed")
            self.verification.judge(result)

    def power_cut(self) -> None:
        """Cut the machine's power under whatever runs, and start it again on the same disks.

        Loads still running die with the guest; a checkpointed load is put back, ready
        for :meth:`verify`.
        """
        self.stop_monitors()
        self.inject(PowerCut(self.vm))
        self.resync_clock()  # the new life's clock was set anew
        self.recovered("machine up again")
        for load in self.loads:
            load.after_power_cycle(self.guest)
            if load.lost:
                self.event("load_lost", f"{load.name} died with the power")
        self.start_monitors()

    def start_monitors(self) -> None:
        self.monitors.start(self.guest)

    def stop_monitors(self) -> None:
        for kind, detail, at in self.monitors.stop():
            self.event(kind, detail, at=at)

    def record_requeues(self) -> None:
        """Say in the timeline which resets requeued requests: only those ran the driver's
        requeue path (a reset that finds nothing in flight does not). Each burst at its
        time, where the kernel log's clock can be measured (the stall judge counts what a
        slow reset requeued), else all in one event."""
        with contextlib.suppress(HarnessError):
            bursts = kmsg.requeue_bursts(self.requeue_trace.read(stop=True))
            if not bursts:
                return
            with contextlib.suppress(HarnessError):
                if self.kernel_clock is None:
                    self.measure_kernel_clock()
            if self.kernel_clock is None:
                self.event("requeued", ", ".join(f"{n} at {at:.1f}s" for at, n in bursts)
                           + " (kernel uptime)")
                return
            for at, n in bursts:
                self.event("requeued", requeue_burst(n, at), at=at + self.kernel_clock)

    def verify(self, load: fio.VerifyLoad) -> None:
        """Every write ``load`` completed must read back intact (the verify-only pass)."""
        self.verification.verify(load)

    def verify_through_fault(self, load: fio.VerifyLoad) -> None:
        """Judge a load whose device a fault took away, now that it is back
        (:meth:`Verification.through_fault`)."""
        self.verification.through_fault(load)

    def salvage(self) -> None:
        """After a failure that left the guest usable, what the loads can still tell."""
        self.verification.salvage()

    def finish_load(self, load: fio.VerifyLoad, transparent: bool = True,
                    now: bool = False, verify: bool = True) -> None:
        """Wait for the load (``now``: only as long as its last recovery is judged), judge its
        JSON, then prove that every completed write is intact (``verify=False``: the caller
        runs that pass itself, see :meth:`Verification.conclude`).

        ``transparent=False`` is for a load running while its device is removed: its errors
        are recorded, not judged yet, and its data is verified once the device is back
        (:meth:`verify_through_fault`). Once a namespace is being removed Linux sets its
        capacity to 0, so writes fail (ENOSPC, EIO) and direct reads past the new end
        return 0 bytes, which fio's inline verification misreads as bad headers; and fio's
        saved verify state counts writes that failed as done, so its verify pass reports
        blocks that were never written: the failed writes fio names are judged apart.
        """
        if transparent:
            self._observe_throughput(load)
        result = load.end(now=now)
        self.event("load_finished", f"{load.name}: "
                   f"{'; '.join(result.failures) or 'no errors'}")
        if not transparent:
            self.loads.opaque.add(load.name)
            return
        self.verification.judge(result)
        self.check_stable()  # a controller still timing out would only stall the verify pass
        self.check_throughput(load)
        if verify:
            self.verify(load)

    def _observe_throughput(self, load: fio.VerifyLoad) -> None:
        """Keep ``load`` running for as long as the throughput judge needs after its last
        recovery (see :meth:`ThroughputJudge.seconds_left`)."""
        started = self.loads.started_at(load)
        while load.running and (left := self.throughput_judge.seconds_left(started,
                                                                           self.now())) > 0:
            self.sleep(min(left, 1.0))

    def check_throughput(self, load: fio.VerifyLoad) -> None:
        """After each recovery the load must come back to a share of its pre-fault IOPS
        (:mod:`harness.reading.throughput`); the figures go into the timeline either way."""
        series = load.iops_per_second()
        if not series:
            raise HarnessError(f"{load.name} left no per-second IOPS log in {load.workdir}")
        verdicts, failure = self.throughput_judge.judge(
            load.name, series, load.latency_per_second(), self.loads.started_at(load))
        for v in verdicts:
            self.event("throughput", v.describe(), at=v.recovered_at + (v.back_after or 0.0))
        if failure is not None:
            self.fail(failure.kind, failure.message, failure.evidence, failure.code)


@dataclass
class Injected:
    """A fault applied through :meth:`Context.inject`; leaving a ``with`` block lifts it."""

    ctx: Context
    fault: Fault

    def __enter__(self) -> Fault:
        return self.fault

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.ctx.lift(self.fault)
